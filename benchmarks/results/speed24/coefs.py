import numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
cap = []
orig = ar._fine
def fine(coef, coarse, n_bins):
    pos = (2 * coarse.to(coef.dtype) + 1) / n_bins - 1
    cap.append((n_bins, (coef[..., 0] + coef[..., 1] * pos).numpy(), coef[..., 2].numpy()))
    return orig(coef, coarse, n_bins)
ar._fine = fine
for name in ("ames", "flights"):
    cap.clear()
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(16384, np.random.default_rng(0), workers=1)
    for nb, s, g in cap:
        acc = np.exp(-np.abs(g) * 0.2344)
        print(f"{name} nb={nb} rows={len(s)} |s| p50 {np.median(np.abs(s)):.2f} p99 {np.quantile(np.abs(s), .99):.2f} max {np.abs(s).max():.1f} | g p1 {np.quantile(g, .01):.2f} p50 {np.median(g):.2f} p99 {np.quantile(g, .99):.2f} | mean acc bound {acc.mean():.3f} share |g|>6 {(np.abs(g) > 6).mean():.4f}")
