"""Decompose TSTR: HGB trained on (i) real x + model's y given all others, (ii) real x + mean of 8 such draws,
(iii) synthetic rows, (iv) synthetic x + real model's y + real residual noise. decomp.py DIR LABEL"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score
from twinforge.models.base import load
d, lab = Path(sys.argv[1]), sys.argv[2]
target = "Sale_Price"
m = load(d / f"model_{lab}")
learned = list(m.transformer_.columns_)
fit = pd.read_csv(d / "fit.csv")[learned]; sc = pd.read_csv(d / "scored.csv")[learned]
enc = xm.Encoder(fit)
j = list(enc.kinds).index(target)
X = lambda df: np.delete(enc.numbers(df), j, axis=1)
def score(x, y):
    f = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(xm.fit_ready(x), y)
    return r2_score(sc[target], f.predict(X(sc)))
trtr = score(X(fit), fit[target].to_numpy(float))
gap = fit.copy(); gap[target] = np.nan
draws = np.column_stack([m.impute(gap, seed=s, workers=1)[target].to_numpy(float) for s in range(8)])
print(f"TRTR {trtr:.4f}")
print("(i) real x, model y|all:", [round(score(X(fit), draws[:, s]) / trtr, 4) for s in range(3)])
print("(ii) real x, mean of 8 draws:", round(score(X(fit), draws.mean(1)) / trtr, 4))
f = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(xm.fit_ready(X(fit)), fit[target])
# out-of-fold residuals of the real model
from sklearn.model_selection import cross_val_predict
oof = cross_val_predict(HistGradientBoostingRegressor(max_iter=200, random_state=0), xm.fit_ready(X(fit)), fit[target], cv=5)
res = fit[target].to_numpy(float) - oof
rng = np.random.default_rng(0)
for s in range(3):
    syn = pd.read_parquet(d / f"{lab}_s{s}.parquet")[learned]
    xs = X(syn)
    y4 = f.predict(xs) + rng.choice(res, len(xs))
    print(f"s{s}: (iii) synthetic {score(xs, syn[target].to_numpy(float)) / trtr:.4f}  (iv) syn x + real f + noise "
          f"{score(xs, y4) / trtr:.4f}  (v) real x + real f + noise {score(X(fit), f.predict(X(fit)) + rng.choice(res, len(fit))) / trtr:.4f}")
