"""In-situ: capture each column's (head, out) in one 16,384-row block of a model; time the steps of finish+draw."""
import sys, time, collections
import numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
cap = []
orig = ar._finish_draw
def fd(head, out, weights, temperature, gen, inverse=None):
    cap.append((head, out.clone() if False else out, inverse))
    return orig(head, out, weights, temperature, gen, inverse)
m = twinforge.load(sys.argv[1])
m._sample(2000, np.random.default_rng(0), workers=1)
ar._finish_draw = fd
m._sample(16384, np.random.default_rng(1), workers=1)
ar._finish_draw = orig
R = 16384
def best(f, n=5):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e9 / R
tot = collections.Counter()
g = torch.Generator().manual_seed(0)
for head, out, inv in cap:
    if inv is not None or len(out) < R: 
        continue
    r = {}
    r["finish"] = best(lambda: head.finish(out))
    lg, _ = head.finish(out)
    r["draw"] = best(lambda: ar._draw(lg, None, 1.0, g))
    K = lg.shape[1]
    if head.positions is None:
        o = out[:, :-3] if head.tilted else out
        r["cal+o"] = best(lambda: head.calibration + o)
        r["f.add_"] = best(lambda: o.to(torch.float32, copy=True).add_(head.calibration))
    if K >= 16:
        r["softmax"] = best(lambda: torch.softmax(lg, 1))
    else:
        r["expmax"] = best(lambda: torch.exp(lg - lg.amax(1, keepdim=True)))
    sm = torch.softmax(lg, 1)
    r["cumsum_"] = best(lambda: sm.clone().cumsum_(1))
    for k, v in r.items(): tot[k] += v
    print(f"K={K:4d} contig={out.is_contiguous()} dtype={out.dtype} num={head.positions is not None} tilt={head.tilted} " + " ".join(f"{k} {v:6.1f}" for k, v in r.items()), flush=True)
print("TOTAL ns/row", {k: round(v) for k, v in tot.items()})
