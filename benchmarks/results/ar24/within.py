"""Top-quintile rows: how much of the model's conditional spread of the target is within coarse bins."""
import sys
from pathlib import Path
import numpy as np, pandas as pd
import twinforge.models.autoregressive as ar
from twinforge.models.base import load
d, lab = Path(sys.argv[1]), sys.argv[2]
target = sys.argv[3] if len(sys.argv) > 3 else "Sale_Price"
m = load(d / f"model_{lab}")
learned = list(m.transformer_.columns_)
sc = pd.read_csv(d / "scored.csv")[learned]
fit = pd.read_csv(d / "fit.csv")[learned]
for c in learned:
    if sc[c].dtype == object:
        sc = sc[sc[c].isna() | sc[c].isin(set(fit[c].dropna()))]
sc = sc.reset_index(drop=True)
col = next(c for c in m.columns_ if c["column"] == target)
q = col["quantiles"]; nb = col["n_bins"]
edges = q[::nb]
print("coarse bin edges (k):", np.round(edges / 1000, 0).tolist())
gap = sc.copy(); gap[target] = np.nan
draws = np.column_stack([m.impute(gap, seed=s, workers=1)[target].to_numpy(float) for s in range(16)])
y = sc[target].to_numpy(float)
tok = np.column_stack([ar._encode(col, draws[:, s]) for s in range(16)])
for lo, hi in ((0, .6), (.6, .8), (.8, .9), (.9, 1.0)):
    r = (y >= np.quantile(y, lo)) & (y <= np.quantile(y, hi))
    total = draws[r].var(1).mean()
    # within-bin part: per row, mean over draws of the variance inside each drawn bin
    within = []
    for i in np.flatnonzero(r):
        v = 0.0
        for t in np.unique(tok[i]):
            s = tok[i] == t
            v += s.mean() * draws[i, s].var()
        within.append(v)
    print(f"true price quantiles {lo}-{hi}: draw sd {np.sqrt(total)/1000:.1f}k, within-bin share of variance "
          f"{np.mean(within)/total:.2f}, mean bias {np.mean(draws[r].mean(1) - y[r])/1000:.1f}k")
