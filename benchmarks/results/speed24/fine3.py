import time, numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
cap = []
orig = ar._fine_draw
def fd(coef, coarse, n_bins, temperature, gen):
    cap.append((coef.clone(), coarse.clone(), n_bins))
    return orig(coef, coarse, n_bins, temperature, gen)
ar._fine_draw = fd
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(16384, np.random.default_rng(0), workers=1)
ar._fine_draw = orig
g = torch.Generator().manual_seed(0)
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e6
tot = [0.0, 0.0]
for coef, coarse, nb in cap:
    a = best(lambda: ar._draw(ar._fine(coef.float(), coarse, nb), None, 1.0, g))
    b = best(lambda: orig(coef, coarse, nb, 1.0, g))
    tot[0] += a; tot[1] += b
print("old row-major us per block", round(tot[0]), "new token-major", round(tot[1]), "columns", len(cap))
