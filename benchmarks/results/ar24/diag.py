"""Where does P(target | others) in synthetic rows depart from the data's? Usage: diag.py DIR LABEL [LABEL...]"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score
import twinforge

d = Path(sys.argv[1]); args = sys.argv[2:]
target = args.pop(0)[2:] if args[0].startswith("t=") else "Sale_Price"
labels = args
fit = pd.read_csv(d / "fit.csv"); sc = pd.read_csv(d / "scored.csv")
meta = twinforge.Metadata.detect(fit)
exc = [c for c in meta.columns if c not in meta.learned_columns]
fit, sc = fit.drop(columns=exc), sc.drop(columns=exc)
enc = xm.Encoder(fit)
j = list(enc.kinds).index(target)
def xy(df):
    x = enc.numbers(df); y = x[:, j]; k = ~np.isnan(y)
    return np.delete(x, j, axis=1)[k], y[k]
xr, yr = xy(fit); xs, ys = xy(sc)
cols = [c for c in enc.kinds if c != target]
f_real = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(xm.fit_ready(xr), yr)
pr = f_real.predict(xs)
print(f"TRTR R2 {r2_score(ys, pr):.4f}; scored residual sd {np.std(ys - pr):.0f}, target sd {np.std(ys):.0f}")
dec = np.quantile(ys, np.linspace(0, 1, 11))
def by_decile(err, name):
    b = np.clip(np.searchsorted(dec, ys, side="right") - 1, 0, 9)
    sse = np.array([np.sum(err[b == k] ** 2) for k in range(10)]) / np.sum((ys - ys.mean()) ** 2)
    bias = np.array([np.mean(err[b == k]) for k in range(10)])
    print(f"  {name} SSE/SST by true decile: {np.round(sse, 4).tolist()}  sum {sse.sum():.4f}")
    print(f"  {name} mean error by decile:   {np.round(bias / 1000, 1).tolist()} (k$)")
by_decile(pr - ys, "real-trained")
for lab in labels:
    for s in (0, 1, 2):
        df = pd.read_parquet(d / f"{lab}_s{s}.parquet")[list(fit.columns)]
        xsy, ysy = xy(df)
        f_syn = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(xm.fit_ready(xsy), ysy)
        ps = f_syn.predict(xs)
        print(f"{lab} s{s}: TSTR R2 {r2_score(ys, ps):.4f}")
        by_decile(ps - ys, "syn-trained")
        # the real model applied to synthetic rows: how P(y|x) in synthetic rows departs
        q = f_real.predict(xsy)
        res = ysy - q
        slope = np.polyfit(q, ysy, 1)[0]
        print(f"  real model on syn rows: R2 {r2_score(ysy, q):.4f} resid sd {np.std(res):.0f} slope y~f {slope:.3f}"
              f" | syn price quantiles 50/90/99/max {np.round(np.quantile(ysy,[.5,.9,.99,1])/1000,0).tolist()}"
              f" real {np.round(np.quantile(yr,[.5,.9,.99,1])/1000,0).tolist()}")
        qb = np.quantile(q, np.linspace(0, 1, 11)); b = np.clip(np.searchsorted(qb, q, side="right") - 1, 0, 9)
        print("  syn resid sd by f_real decile:", [int(np.std(res[b == k]) / 1000) for k in range(10)],
              "mean:", [int(np.mean(res[b == k]) / 1000) for k in range(10)])
        # the real residuals, out of sample, by f decile (scored rows)
        if s == 0 and lab == labels[0]:
            qb2 = np.quantile(pr, np.linspace(0, 1, 11)); b2 = np.clip(np.searchsorted(qb2, pr, side="right") - 1, 0, 9)
            print("  real (scored) resid sd by f decile:", [int(np.std((ys - pr)[b2 == k]) / 1000) for k in range(10)],
                  "mean:", [int(np.mean((ys - pr)[b2 == k]) / 1000) for k in range(10)])
        # correlations with the top predictors, syn vs real
        top = ["Gr_Liv_Area", "Total_Bsmt_SF", "Garage_Area", "Garage_Cars", "Year_Built", "First_Flr_SF",
               "Year_Remod_Add", "Full_Bath", "Mas_Vnr_Area", "Fireplaces", "TotRms_AbvGrd", "Lot_Area"]
        if target == "Sale_Price":
            print("  corr(y, c) syn/real:", {c: (round(df[target].corr(df[c]), 3), round(fit[target].corr(fit[c]), 3))
                                            for c in top})
