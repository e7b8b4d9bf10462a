import time, numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
cap = []
orig = ar._fine
def fine(coef, coarse, n_bins):
    cap.append((coef.clone(), coarse.clone(), n_bins))
    return orig(coef, coarse, n_bins)
ar._fine = fine
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(16384, np.random.default_rng(0), workers=1)
ar._fine = orig
g = torch.Generator().manual_seed(0)
def best(f, n=5):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e6
def current(coef, coarse, nb, temperature=1.0):
    return ar._draw(ar._fine(coef, coarse, nb), None, temperature, g)

_FINE_TRIES = 6
def fine_draw(coef, coarse, n_bins, temperature, gen):
    coef = coef.float() / temperature if temperature != 1.0 else coef.float()
    position = (2 * coarse.to(torch.float32) + 1) / n_bins - 1
    slope, curve = coef[:, 0] + coef[:, 1] * position, coef[:, 2]
    # the largest of curve * u^2 over the fine bins: at the outermost ones (curve > 0) or the central ones
    top = torch.maximum(curve * (0.5 - 0.5 / n_bins) ** 2, curve * (0.5 / n_bins) ** 2)
    a = slope / n_bins
    flat = a.abs() < 1e-6
    grow = torch.expm1(slope)
    a = torch.where(flat, 1.0, a)
    out = torch.empty(len(coef), dtype=torch.int64)
    todo = torch.nonzero((curve.abs() <= 8.0) & (slope.abs() <= 60.0))[:, 0]
    hard = torch.ones(len(coef), dtype=torch.bool)
    for _ in range(_FINE_TRIES):
        if not len(todo):
            break
        v = torch.rand(2, len(todo), generator=gen)
        k = torch.where(flat[todo], v[0] * n_bins, torch.log1p(v[0] * grow[todo]) / a[todo])
        k = k.floor_().clamp_(0, n_bins - 1)
        u = (k + 0.5) / n_bins - 0.5
        ok = v[1] < torch.exp(curve[todo] * u * u - top[todo])
        done = todo[ok]
        out[done] = k[ok].long()
        hard[done] = False
        todo = todo[~ok]
    rest = torch.nonzero(hard)[:, 0]
    if len(rest):
        out[rest] = torch.as_tensor(ar._draw(ar._fine(coef[rest], coarse[rest], n_bins), None, 1.0, gen))
    return out.numpy()

tot = {"current": 0.0, "reject": 0.0}
for coef, coarse, nb in cap:
    r = {"current": best(lambda: current(coef, coarse, nb)), "reject": best(lambda: fine_draw(coef, coarse, nb, 1.0, g))}
    for k in r: tot[k] += r[k]
    sub = coef[:50].repeat(2000, 1); cs = coarse[:50].repeat(2000)
    ref = torch.softmax(orig(coef[:50], coarse[:50], nb), 1).double().numpy()
    hs = []
    for f in (current, lambda a, b, c: fine_draw(a, b, c, 1.0, g)):
        k = np.asarray(f(sub, cs, nb)).reshape(2000, 50)
        h = np.stack([np.bincount(k[:, j], minlength=nb) for j in range(50)]) / 2000
        hs.append(np.abs(h - ref).sum(1).mean())
    # temperature 2
    ref2 = torch.softmax(orig(coef[:50], coarse[:50], nb) / 2, 1).double().numpy()
    k2 = fine_draw(sub, cs, nb, 2.0, g).reshape(2000, 50)
    h2 = np.abs(np.stack([np.bincount(k2[:, j], minlength=nb) for j in range(50)]) / 2000 - ref2).sum(1).mean()
    print(f"R={len(coef):6d} " + " ".join(f"{k} {v:7.0f}us" for k, v in r.items()) + "  L1 (2000 draws): " + " ".join(f"{x:.3f}" for x in hs) + f" temp2 {h2:.3f}", flush=True)
print("TOTAL us per block", {k: round(v) for k, v in tot.items()})
