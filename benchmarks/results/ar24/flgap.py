"""Flights: per draw, TSTR/TRTR, the share of rows whose arrival delay departs from the departure delay's line by over
an hour, and TSTR/TRTR with those rows dropped / with arr_delay rebuilt as line + a residual drawn from the data's."""
import sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
import twinforge
d, lab = Path(sys.argv[1]), sys.argv[2]
fit = pd.read_csv(d / "fit.csv"); sc = pd.read_csv(d / "scored.csv")
meta = twinforge.Metadata.detect(fit)
exc = [c for c in meta.columns if c not in meta.learned_columns]
fx, sx = fit.drop(columns=exc), sc.drop(columns=exc)
enc = xm.Encoder(fx)
k = fx.dropna(subset=["arr_delay", "dep_delay"])
b, c = np.polyfit(k.dep_delay, k.arr_delay, 1)
res = (k.arr_delay - b * k.dep_delay - c).to_numpy()
print(f"real: gap>60 {np.mean(np.abs(res) > 60):.4f}, dep_delay>300 rows {np.mean(fx.dep_delay > 300):.4f} max {fx.dep_delay.max()}")
rng = np.random.default_rng(0)
def r(df):
    u = xm.utility(enc, df[fx.columns].reset_index(drop=True), fx, sx, "arr_delay", 0)
    return u["tstr"] / u["trtr"]
for s in (0, 1, 2):
    df = pd.read_parquet(d / f"{lab}_s{s}.parquet")
    g = df.arr_delay - b * df.dep_delay - c
    far = g.abs() > 60
    fixed = df.copy()
    ok = g.notna()
    fixed.loc[ok, "arr_delay"] = np.round(b * df.dep_delay[ok] + c + rng.choice(res, ok.sum()))
    t = fixed.arr_time.notna() & ok
    mins = (60 * (fixed.sched_arr_time[t] // 100) + fixed.sched_arr_time[t] % 100 + fixed.arr_delay[t]) % 1440
    fixed.loc[t, "arr_time"] = 100 * (mins // 60) + mins % 60
    big = df.dep_delay > 120
    print(f"s{s}: TSTR/TRTR {r(df):.4f} | gap>60 {far.mean():.4f} (dep>120: {far[big].mean():.3f}, real "
          f"{np.mean(np.abs(res[k.dep_delay.to_numpy() > 120]) > 60):.3f}) | dropped {r(df[~far]):.4f} | rebuilt {r(fixed):.4f} "
          f"| dep>300 {np.mean(df.dep_delay > 300):.4f} max {df.dep_delay.max()}", flush=True)
