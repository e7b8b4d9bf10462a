"""TSTR/TRTR of saved models at sampling temperatures: temp.py DIR TARGET LABEL[,LABEL] T [T ...]"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
import _extra_metrics as xm
import twinforge
from twinforge.models.base import load
d, target, labels = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
fit = pd.read_csv(d / "fit.csv"); sc = pd.read_csv(d / "scored.csv")
meta = twinforge.Metadata.detect(fit)
exc = [c for c in meta.columns if c not in meta.learned_columns]
fx, sx = fit.drop(columns=exc), sc.drop(columns=exc)
enc = xm.Encoder(fx)
for lab in labels:
    m = load(d / f"model_{lab}")
    for t in map(float, sys.argv[4:]):
        r = []
        for s in (0, 1, 2):
            df = m.sample(len(fit), seed=s, workers=1, temperature=t)
            if t != 1.0:
                df.to_parquet(d / f"{lab}_t{t}_s{s}.parquet", index=False)
            u = xm.utility(enc, df[fx.columns], fx, sx, target, 0)
            r.append(u["tstr"] / u["trtr"])
        print(lab, t, round(np.mean(r), 4), np.round(r, 4).tolist(), flush=True)
