"""Finer split of draw time (one thread, process CPU): python prof2.py MODEL_DIR [rows]"""
import sys, time, collections
import numpy as np
import twinforge
import twinforge.models.autoregressive as ar
T = collections.defaultdict(float); C = collections.Counter()
def timed(name, f, mod=ar):
    def g(*a, **k):
        t = time.process_time(); r = f(*a, **k); T[name] += time.process_time() - t; C[name] += 1; return r
    return g
for nm in ["_hidden_inplace", "_group_linear", "_finish_draw", "_decode", "_exact_from_reference", "_derive_values",
           "_hold_relations", "_reference_shift", "_refine"]:
    setattr(ar, nm, timed(nm, getattr(ar, nm)))
ar.Autoregressive._add_unit = timed("_add_unit", ar.Autoregressive._add_unit)
m = twinforge.load(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 16384
types = collections.Counter((c["type"], "ref" if "reference" in c else "", "derive" if "derive" in c else "") for c in m.columns_)
print(types, "tokens", sum(ar._n_tokens(c) for c in m.columns_), "passes", len(m.groups_))
m._sample(2000, np.random.default_rng(0), workers=1)
best = None
for r in range(3):
    T.clear(); C.clear()
    t = time.process_time(); m._sample(N, np.random.default_rng(r), workers=1); dt = time.process_time() - t
    if best is None or dt < best[0]: best = (dt, dict(T), dict(C))
dt, parts, counts = best
print(f"rows/CPU s {N/dt:,.0f}; us/row {1e6*dt/N:.2f}")
for k, v in sorted(parts.items(), key=lambda x: -x[1]):
    print(f"  {k:24s} {1e6*v/N:6.2f} us/row  calls {counts[k]}")
