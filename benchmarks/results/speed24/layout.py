"""Row-major [rows, K] draw (today's) vs token-major [K, rows] draw: ns per logit, one thread, 16,384 rows."""
import time, torch
torch.set_num_threads(1)
R = 16384
g = torch.Generator().manual_seed(0)
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b
def today(x):
    if x.shape[1] >= 16:
        cum = torch.softmax(x, 1).cumsum_(1)
    else:
        cum = torch.exp(x - x.amax(1, keepdim=True)).cumsum_(1)
    total = cum[:, -1:]
    u = torch.rand(len(cum), 1, generator=g)
    u = torch.minimum(u * total, torch.nextafter(total, 0 * total))
    return (cum <= u).sum(1) if cum.shape[1] < 16 else torch.searchsorted(cum, u, right=True)[:, 0]
def tmajor(xt, loop=False):
    p = xt.sub(xt.amax(0)).exp_()
    if loop:
        for k in range(1, len(p)):
            p[k] += p[k - 1]
        cum = p
    else:
        cum = p.cumsum_(0)
    total = cum[-1]
    u = torch.rand(cum.shape[1], generator=g)
    u = torch.minimum(u * total, torch.nextafter(total, 0 * total))
    return (cum <= u).sum(0)
def tmajor_chunk(xt, step=2048):
    out = torch.empty(xt.shape[1], dtype=torch.int64)
    u = torch.rand(xt.shape[1], generator=g)
    for s in range(0, xt.shape[1], step):
        x = xt[:, s:s + step]
        p = x.sub(x.amax(0)).exp_().cumsum_(0)
        total = p[-1]
        uu = torch.minimum(u[s:s + step] * total, torch.nextafter(total, 0 * total))
        torch.sum(p <= uu, 0, out=out[s:s + step])
    return out
for K in (2, 3, 5, 8, 16, 32, 33, 64, 122):
    x = torch.randn(R, K) * 3
    xt = x.T.contiguous()
    r = [best(lambda: today(x)), best(lambda: tmajor(xt)), best(lambda: tmajor(xt, True)), best(lambda: tmajor_chunk(xt))]
    c = [best(lambda: x.clone().cumsum_(1)), best(lambda: xt.clone().cumsum_(0)), best(lambda: xt.amax(0)), best(lambda: (xt <= 0.5).sum(0)), best(lambda: x.amax(1))]
    print(f"K={K:4d} ns/logit: today {r[0]*1e9/R/K:6.2f}  tmajor {r[1]*1e9/R/K:6.2f}  tmajor-loop {r[2]*1e9/R/K:6.2f}  tmajor-chunk {r[3]*1e9/R/K:6.2f} | "
          f"us/block today {r[0]*1e6:7.0f} tmajor {r[1]*1e6:7.0f} loop {r[2]*1e6:7.0f} chunk {r[3]*1e6:7.0f} | cumsum1 {c[0]*1e9/R/K:.2f} cumsum0 {c[1]*1e9/R/K:.2f} amax0 {c[2]*1e9/R/K:.2f} cmpsum0 {c[3]*1e9/R/K:.2f} amax1 {c[4]*1e9/R/K:.2f}", flush=True)
