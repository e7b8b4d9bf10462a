"""Fit auto (seed 0) on bench_auto's flights TRAINING rows (the holdout is not read) and report whether arr_delay kept
its dep_delay reference."""
import sys, tempfile
import pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
from bench_auto import DATASETS
import twinforge
real = pd.read_csv(f"/work/shared/datasets/{DATASETS['flights']}")
order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
with tempfile.TemporaryDirectory() as tmp:
    real.iloc[order[round(len(real) * 0.2):]].to_csv(f"{tmp}/train.csv", index=False)
    train = pd.read_csv(f"{tmp}/train.csv")
m = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(train)
print({c["column"]: c.get("reference") for c in m.columns_ if c["type"] == "binned" and "derive" not in c})
