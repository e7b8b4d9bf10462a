"""How much TSTR/TRTR varies for fresh REAL rows: of the split's fitted rows, bootstrap resamples (same size) and
disjoint halves, each scored by the bench's HGB on the split's scored rows, over the full fitted rows' TRTR."""
import sys
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
from auto_train_split import split
from bench_auto import TARGETS
import twinforge
name = sys.argv[1]
fit, sc = split(name)
meta = twinforge.Metadata.detect(fit)
exc = [c for c in meta.columns if c not in meta.learned_columns]
fit, sc = fit.drop(columns=exc), sc.drop(columns=exc)
enc = xm.Encoder(fit)
t = TARGETS[name]
base = xm.utility(enc, fit, fit, sc, t, 0)["trtr"]
rng = np.random.default_rng(0)
boot = [xm.utility(enc, fit.iloc[rng.integers(0, len(fit), len(fit))].reset_index(drop=True), fit, sc, t, 0)["tstr"] / base for _ in range(6)]
halves = []
for s in range(3):
    p = rng.permutation(len(fit)); h = len(fit) // 2
    a = xm.utility(enc, fit.iloc[p[:h]].reset_index(drop=True), fit, sc, t, 0)["tstr"]
    b = xm.utility(enc, fit.iloc[p[h:]].reset_index(drop=True), fit, sc, t, 0)["tstr"]
    halves += [a / base, b / base]
print(name, f"TRTR {base:.4f}; bootstrap real / TRTR {np.round(boot, 3).tolist()} mean {np.mean(boot):.3f}; "
      f"half-size real / TRTR {np.round(halves, 3).tolist()}")
