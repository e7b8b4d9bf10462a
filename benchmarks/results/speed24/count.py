import time, torch
torch.set_num_threads(1)
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e6
R = 16384
for n, K, P in ((7, 3, 2048), (6, 5, 8192), (4, 35, R), (4, 8, R)):
    p = torch.rand(n, K, P).cumsum(1)
    t = torch.rand(n, P) * p[:, -1]
    inv = torch.randint(0, P, (R,))
    r = {}
    r["le.sum"] = best(lambda: (p <= t[:, None]).sum(1))
    r["le_.sum.long"] = best(lambda: p.clone().le_(t[:, None]).sum(1).long())
    r["(clone)"] = best(lambda: p.clone())
    r["le uint8 sum"] = best(lambda: (p <= t[:, None]).view(torch.uint8).sum(1, dtype=torch.uint8))
    r["ge.argmin?"] = best(lambda: (p > t[:, None]).to(torch.uint8).argmax(1))
    r["loop count"] = best(lambda: sum((p[:, k] <= t).to(torch.uint8) for k in range(K)))
    r["idxsel2"] = best(lambda: p.index_select(2, inv))
    r["adv idx"] = best(lambda: p[:, :, inv])
    r["2d idxsel1"] = best(lambda: p.view(n * K, P).index_select(1, inv))
    q = p.view(n * K, P).T.contiguous()
    r["rowmajor idxsel0"] = best(lambda: q.index_select(0, inv))
    print(n, K, P, " ".join(f"{k}: {v:.0f}" for k, v in r.items()), flush=True)
