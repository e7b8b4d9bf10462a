"""Resample a saved model with changes: resample.py DIR LABEL NEWLABEL MODE  (MODE: nogroup | nobias)"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
from twinforge.models.base import load
d, lab, new, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = load(d / f"model_{lab}")
n = len(pd.read_csv(d / "fit.csv"))
if "nogroup" in mode:
    m.groups_ = [[i] for i in m.order_]
if "nobias" in mode:
    m.bias_ = [np.zeros_like(b) for b in m.bias_]
for s in (0, 1, 2):
    m.sample(n, seed=s, workers=1).to_parquet(d / f"{new}_s{s}.parquet", index=False)
