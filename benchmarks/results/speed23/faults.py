"""Minor page faults per function during sampling (one thread): python faults.py MODEL_DIR"""
import sys, resource, collections
import numpy as np
import twinforge
import twinforge.models.autoregressive as ar
F = collections.Counter()
stack = []
def flt(): return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
def timed(name, f):
    def g(*a, **k):
        f0 = flt(); stack.append(0); r = f(*a, **k); inner = stack.pop(); d = flt() - f0
        F[name] += d - inner
        if stack: stack[-1] += d
        return r
    return g
for nm in ["_hidden_inplace", "_group_linear", "_finish_draw", "_draw", "_decode", "_refine", "_exact_from_reference"]:
    setattr(ar, nm, timed(nm, getattr(ar, nm)))
ar._ColumnHead.finish = timed("finish", ar._ColumnHead.finish)
ar.Autoregressive._add_unit = timed("_add_unit", ar.Autoregressive._add_unit)
ar.Autoregressive._sample_rows = timed("_sample_rows(rest)", ar.Autoregressive._sample_rows)
m = twinforge.load(sys.argv[1])
m.sample(1000, seed=0)
for r in range(3):
    F.clear(); f0 = flt()
    m.sample(100_000, seed=r, workers=1)
    print("total", flt() - f0, dict(F.most_common()))
