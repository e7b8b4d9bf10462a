"""Where sampling time goes, per saved model and pass price: python prof.py MODEL_DIR[:cost1,cost2] ...
Rows per CPU second (workers=1, best of 3 draws of 65,536 rows) and the share of trunk / heads / draws+decode /
input updates; with costs, the model is regrouped at each pass price first (speed only: calibration kept)."""
import sys, time, os, collections
import numpy as np
import twinforge
import twinforge.models.autoregressive as ar

T = collections.defaultdict(float)
def timed(name, f):
    def g(*a, **k):
        t = time.process_time(); r = f(*a, **k); T[name] += time.process_time() - t; return r
    return g
ar._hidden_inplace = timed("trunk", ar._hidden_inplace)
ar._group_linear = timed("heads", ar._group_linear)
ar.Autoregressive._draw_column = timed("draw", ar.Autoregressive._draw_column)
ar.Autoregressive._add_unit = timed("update", ar.Autoregressive._add_unit)
N = 65_536
for arg in sys.argv[1:]:
    path, _, costs = arg.partition(":")
    m = twinforge.load(path)
    cfg = m._model if hasattr(m, "_model") else m
    for c in [float(x) for x in costs.split(",")] if costs else [None]:
        if c is not None:
            ar._PASS_COST = c
            m._group_columns(np.random.default_rng(0))
            m._bf16_net = None
        m._sample(2000, np.random.default_rng(0), workers=1)
        best = None
        for r in range(3):
            T.clear()
            t = time.process_time()
            m._sample(N, np.random.default_rng(r), workers=1)
            dt = time.process_time() - t
            if best is None or dt < best[0]:
                best = (dt, dict(T))
        dt, parts = best
        tot = sum(parts.values())
        d = len(m.columns_); Tk = sum(ar._n_tokens(col) for col in m.columns_)
        print(f"{os.path.basename(path)} cost={c} width={m.config_['width']} d={d} T={Tk} passes={len(m.groups_)} "
              f"rows/CPU s {N/dt:,.0f}; us/row {1e6*dt/N:.2f}: " +
              " ".join(f"{k} {1e6*v/N:.2f}" for k, v in parts.items()) + f" other {1e6*(dt-tot)/N:.2f}", flush=True)
