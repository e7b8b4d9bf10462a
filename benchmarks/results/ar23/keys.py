"""Weather on the split: DCR share of synthetic rows whose (origin, day, hour) is a fit-set key vs the others."""
import json, sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np, pandas as pd
from auto_train_split import split
import _extra_metrics as xm
import twinforge
name, keycols = sys.argv[1], sys.argv[2].split(",")
fit_df, scored = split(name)
meta = twinforge.Metadata.detect(fit_df)
bench = json.load(open("/work/wt-ar/benchmarks/results/auto.json"))["datasets"][name]["excluded"]
excluded = sorted(set(c for c in meta.columns if c not in meta.learned_columns) | set(bench))
fit_x, test_x = fit_df.drop(columns=excluded), scored.drop(columns=excluded)
enc = xm.Encoder(fit_x)
ts = fit_x.iloc[np.random.default_rng(0).choice(len(fit_x), len(test_x), replace=False)]
keys = set(map(tuple, fit_x[keycols].astype(str).to_numpy()))
for width in (None, 64):
    model = twinforge.create("auto", seed=0, progress=False, width=width).fit(fit_df, meta)
    draws = model.sample(8 * len(test_x), seed=10)[fit_x.columns].reset_index(drop=True)
    hit = np.array([tuple(r) in keys for r in draws[keycols].astype(str).to_numpy()])
    s, is_cat = enc.scaled(draws); t, _ = enc.scaled(ts); h, _ = enc.scaled(test_x)
    dt, dh = xm._nearest(s, t, is_cat), xm._nearest(s, h, is_cat)
    win = (dt < dh) + 0.5 * (dt == dh)
    print(f"width {width}: key hits {hit.mean():.3f} (fit keys {len(keys)}); dcr all {win.mean():.4f}, "
          f"hits {win[hit].mean():.4f}, others {win[~hit].mean():.4f}; median d_train {np.median(dt):.4f} d_hold {np.median(dh):.4f}", flush=True)
    # fresh-like: real scored rows' keys are never fit keys
