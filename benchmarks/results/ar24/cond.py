"""The model's conditional of the target on real scored rows: given all other columns (impute), and given the
columns drawn before it in the sampling order (seed data). cond.py DIR LABEL [TARGET]"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
from sklearn.ensemble import HistGradientBoostingRegressor
from twinforge.models.base import load
d, lab = Path(sys.argv[1]), sys.argv[2]
target = sys.argv[3] if len(sys.argv) > 3 else "Sale_Price"
m = load(d / f"model_{lab}")
fit = pd.read_csv(d / "fit.csv"); sc = pd.read_csv(d / "scored.csv")
learned = list(m.transformer_.columns_)
fit, sc = fit[learned], sc[learned]
ok = np.ones(len(sc), bool)
for c in learned:
    if sc[c].dtype == object:
        ok &= sc[c].isna().to_numpy() | sc[c].isin(set(fit[c].dropna())).to_numpy()
sc = sc[ok].reset_index(drop=True)
print("scored rows kept", ok.sum(), "of", len(ok))
names = [c["column"] for c in m.columns_]
t = names.index(target)
before = []
for g in m.groups_:
    if t in g:
        break
    before += [names[i] for i in g]
print("target pass", [names[i] for g in m.groups_ if t in g for i in g])
enc = xm.Encoder(fit)
def hgb(cols):
    X = lambda df: enc.numbers(df)[:, [list(enc.kinds).index(c) for c in cols]]
    f = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(xm.fit_ready(X(fit)), fit[target].to_numpy())
    return lambda df: f.predict(X(df))
others = [c for c in learned if c != target]
f_all, f_pre = hgb(others), hgb(before)
rep = pd.concat([sc] * 4, ignore_index=True)
y = rep[target].to_numpy(float)
gap = sc.copy(); gap[target] = np.nan
imp = pd.concat([m.impute(gap, seed=s, workers=1) for s in range(4)], ignore_index=True)
print(f"given all {len(others)} others: real resid sd {np.std(y - f_all(rep)):.0f}  model draw resid sd "
      f"{np.std(imp[target].to_numpy(float) - f_all(rep)):.0f}  mean abs draw-true {np.mean(np.abs(imp[target]-y)):.0f}")
seed = rep[before]
pre = pd.concat([m.sample(len(sc), seed=s, seed_data=sc[before], workers=1) for s in range(4)], ignore_index=True)
print(f"given the {len(before)} columns before it: real resid sd {np.std(y - f_pre(rep)):.0f}  model draw resid sd "
      f"{np.std(pre[target].to_numpy(float) - f_pre(rep)):.0f}")
k = 16
draws = np.column_stack([m.impute(gap, seed=100 + s, workers=1)[target].to_numpy(float) for s in range(k)])
yt = sc[target].to_numpy(float)
mu = draws.mean(1)
from sklearn.metrics import r2_score
print(f"model conditional mean: R2 vs truth {r2_score(yt, mu):.4f} (HGB real {r2_score(yt, f_all(sc)):.4f}); "
      f"mean within-row sd {draws.std(1, ddof=1).mean():.0f}; sd(mean - f_all) {np.std(mu - f_all(sc)):.0f}")
# where the spread is: by true price decile
dec = np.quantile(yt, np.linspace(0, 1, 6)); b = np.clip(np.searchsorted(dec, yt, side='right') - 1, 0, 4)
print("by true quintile: within-row sd", [int(draws.std(1)[b == q].mean()) for q in range(5)],
      "| |mean-true|", [int(np.abs(mu - yt)[b == q].mean()) for q in range(5)],
      "| |hgb-true|", [int(np.abs(f_all(sc) - yt)[b == q].mean()) for q in range(5)])
# the relative spread: log scale
print("within-row sd of log draws", np.round(np.log(draws).std(1, ddof=1).mean(), 4), 
      "real log resid sd", np.round(np.std(np.log(yt) - np.log(np.clip(f_all(sc), 1e4, None))), 4))
