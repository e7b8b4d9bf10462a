"""Prototype of a distance filter (not in the model): drop synthetic rows nearer to their nearest fitted row than
a quantile q of the fitted rows' own leave-one-out nearest-neighbour distances; DCR share of what is kept."""
import json, sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np, pandas as pd
import _extra_metrics as xm
out = sys.argv[1]
fit = pd.read_csv(f"{out}/fit.csv"); scored = pd.read_csv(f"{out}/scored.csv")
enc = xm.Encoder(fit)
ts = fit.iloc[np.random.default_rng(0).choice(len(fit), len(scored), replace=False)]
f, is_cat = enc.scaled(fit); t, _ = enc.scaled(ts); h, _ = enc.scaled(scored)
# leave-one-out NN distance among fitted rows
loo = np.empty(len(f))
for i in range(0, len(f), 256):
    x = f[i:i+256, None, :]; d = np.abs(x - f[None]); d[:, :, is_cat] = (d[:, :, is_cat] > 0)
    both = np.isnan(x) & np.isnan(f[None]); d = np.where(both, 0.0, np.where(np.isnan(d), 1.0, d)).mean(2)
    d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf
    loo[i:i+256] = d.min(1)
for s in range(3):
    syn = pd.read_parquet(f"{out}/base_s{s}.parquet")[fit.columns]
    y, _ = enc.scaled(syn)
    d_fit = xm._nearest(y, f, is_cat)
    for q in (0.0, 0.05, 0.1, 0.2):
        keep = d_fit >= np.quantile(loo, q) if q else np.ones(len(y), bool)
        z = y[keep][: len(scored)]
        dt, dh = xm._nearest(z, t, is_cat), xm._nearest(z, h, is_cat)
        print(f"s{s} q={q}: kept {keep.mean():.3f} dcr {np.mean(dt < dh) + 0.5 * np.mean(dt == dh):.4f}", flush=True)
