"""Primitive timings at 16384 rows x K tokens, and per-column _finish_draw cost on ames (one thread)."""
import sys, time, collections
import numpy as np, torch
torch.set_num_threads(1)
R = 16384
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e9 / R  # ns per row
g = torch.Generator().manual_seed(0)
for K in (3, 8, 20, 60, 150, 400):
    out = (torch.randn(R, K) * 3).to(torch.bfloat16)
    cal = torch.randn(K)
    lg = cal + out
    sm = torch.softmax(lg, 1)
    cum = sm.cumsum(1)
    u = torch.rand(R, 1)
    r = {}
    r["cal+out"] = best(lambda: cal + out)
    r["softmax"] = best(lambda: torch.softmax(lg, 1))
    r["exp-max"] = best(lambda: torch.exp(lg - lg.amax(1, keepdim=True)))
    r["exp"] = best(lambda: torch.exp(lg))
    r["cumsum"] = best(lambda: sm.cumsum(1))
    r["cumsum_"] = best(lambda: sm.clone().cumsum_(1))
    tri = torch.ones(K, K).triu()
    r["mm-cumsum"] = best(lambda: sm @ tri)
    r["le-sum"] = best(lambda: (cum <= u).sum(1))
    r["search"] = best(lambda: torch.searchsorted(cum, u, right=True))
    r["multinom"] = best(lambda: torch.multinomial(sm, 1, generator=g))
    r["rand"] = best(lambda: torch.rand(R, 1, generator=g))
    r["clone"] = best(lambda: sm.clone())
    print(f"K={K:4d} " + " ".join(f"{k} {v:6.1f}" for k, v in r.items()), flush=True)

import twinforge, twinforge.models.autoregressive as ar
T = collections.defaultdict(float)
orig = ar._finish_draw
def fd(head, out, weights, temperature, gen, inverse=None):
    t = time.perf_counter(); r = orig(head, out, weights, temperature, gen, inverse)
    T[(out.shape[1], inverse is not None, head.positions is not None, head.tilted)] += time.perf_counter() - t; return r
ar._finish_draw = fd
m = twinforge.load(sys.argv[1])
m._sample(2000, np.random.default_rng(0), workers=1)
T.clear()
t = time.perf_counter(); m._sample(R, np.random.default_rng(1), workers=1); dt = time.perf_counter() - t
print(f"total {dt*1e6/R:.2f} us/row; finish_draw {sum(T.values())*1e6/R:.2f}")
print("passes", [len(g) for g in m.groups_])
for k, v in sorted(T.items(), key=lambda x: -x[1])[:40]:
    print(f"  K(out)={k[0]:4d} shared={k[1]} numeric={k[2]} tilted={k[3]}  {v*1e9/R:7.1f} ns/row")
