import time, torch
torch.set_num_threads(1)
R = 16384
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e9 / R
g = torch.Generator().manual_seed(0)
for K in (3, 5, 8, 13, 33):
    lg = torch.randn(R, K) * 3
    cum = torch.softmax(lg, 1).cumsum(1)
    u = torch.rand(R, 1); total = cum[:, -1:]
    uu = u * total
    ones = torch.ones(K)
    r = {}
    r["rand"] = best(lambda: torch.rand(R, 1, generator=g))
    r["u*tot"] = best(lambda: u * total)
    r["nextafter"] = best(lambda: torch.nextafter(total, 0 * total))
    r["min"] = best(lambda: torch.minimum(uu, total))
    r["le"] = best(lambda: cum <= uu)
    b = cum <= uu
    r["sum"] = best(lambda: b.sum(1))
    r["cnz"] = best(lambda: torch.count_nonzero(b, 1))
    r["le.float@1"] = best(lambda: (cum <= uu).float() @ ones)
    r["lt.sum"] = best(lambda: (uu > cum).sum(1, dtype=torch.int32))
    r["search"] = best(lambda: torch.searchsorted(cum, uu, right=True))
    r["amax"] = best(lambda: lg.amax(1, keepdim=True))
    r["sub"] = best(lambda: lg - total)
    r["exp"] = best(lambda: lg.exp())
    r["aminmax"] = best(lambda: torch.aminmax(lg))
    r["exp_cumsum"] = best(lambda: lg.exp().cumsum_(1))
    r["mm_cumsum"] = best(lambda: lg @ torch.ones(K, K).triu())
    print(f"K={K:3d} " + " ".join(f"{k} {v:5.1f}" for k, v in r.items()), flush=True)
