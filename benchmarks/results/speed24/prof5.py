"""One thread: time per section of _sample (us per row) for ames and flights, 3 x 16,384 rows; then aten op table."""
import sys, time, collections, functools
import numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
R = 16384
names = ["_fused_draws", "_fine", "_hidden_inplace", "_group_linear", "_finish_draw", "_decode", "_refine", "_exact_from_reference", "_from_reference", "_derive_values", "_hold_relations", "_reference_shift"]
acc = collections.Counter()
def wrap(f, key):
    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); acc[key] += time.perf_counter() - t; return r
    return g
for n in names:
    setattr(ar, n, wrap(getattr(ar, n), n))
for n in ["_add_unit", "_draw_column"]:
    setattr(ar.Autoregressive, n, wrap(getattr(ar.Autoregressive, n), n))
_draw0 = ar._draw
ar._draw = wrap(_draw0, "_draw")
for name in sys.argv[1:] or ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(2000, np.random.default_rng(0), workers=1)
    best = None
    for r in range(3):
        acc.clear()
        t = time.process_time(); m._sample(R, np.random.default_rng(r), workers=1); tot = time.process_time() - t
        if best is None or tot < best[0]:
            best = (tot, dict(acc))
    tot, a = best
    print(f"{name}: total {tot*1e6/R:.2f} us/row ({R/tot:,.0f} rows/CPU s)")
    for k, v in sorted(a.items(), key=lambda kv: -kv[1]):
        print(f"   {k:24s} {v*1e6/R:6.2f}")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        m._sample(R, np.random.default_rng(5), workers=1)
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
