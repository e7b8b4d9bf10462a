import sys, time, collections, functools, numpy as np, torch
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
acc = collections.Counter()
orig = ar.Autoregressive._draw_column
def dc(self, i, *a, **k):
    t = time.perf_counter(); r = orig(self, i, *a, **k); acc[i] += time.perf_counter() - t; return r
ar.Autoregressive._draw_column = dc
for fn in ("_decode", "_finish_draw"):
    o = getattr(ar, fn)
    def w(*a, _o=o, _fn=fn, **k):
        t = time.perf_counter(); r = _o(*a, **k); acc[_fn] += time.perf_counter() - t; return r
    setattr(ar, fn, w)
m = twinforge.load(f"/tmp/ar22/models/{sys.argv[1]}")
m._sample(2000, np.random.default_rng(0), workers=1)
R = 16384
best = None
for r in range(3):
    acc.clear()
    t = time.process_time(); m._sample(R, np.random.default_rng(r), workers=1); tot = time.process_time() - t
    if best is None or tot < best[0]: best = (tot, dict(acc))
tot, a = best
print(f"total {tot*1e6/R:.2f} us/row; finish_draw {a['_finish_draw']*1e6/R:.2f} decode {a['_decode']*1e6/R:.2f}")
for p, g in enumerate(m.groups_):
    ts = [a.get(i, 0) * 1e6 / R for i in g]
    print(f"pass {p:2d}: draw_column sum {sum(ts):5.2f} us/row | " + " ".join(f"{m.columns_[i]['type'][0]}{ar._n_tokens(m.columns_[i])}:{t:.2f}" for i, t in zip(g, ts)))
