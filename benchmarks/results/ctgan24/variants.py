"""Sampling variants of a saved model: argv model_dir label. Writes split/{label}_{variant}_s0.parquet"""
import sys, numpy as np, pandas as pd, torch, twinforge
torch.set_num_threads(1)
mdir, label = sys.argv[1], sys.argv[2]
out = "/tmp/ctgan24/split"
m = twinforge.load(mdir)
n = 9935
m.sample(n, seed=0).to_parquet(f"{out}/{label}_base_s0.parquet")
m.sample(1000, seed=0, conditions={"result": "invalid"}).to_parquet(f"{out}/{label}_condinv.parquet")
m.sample(1000, seed=0, conditions={"result": "negative"}).to_parquet(f"{out}/{label}_condneg.parquet")
bias = m.span_bias_
for col in m.encoding_.columns_:
    print(col["name"], col["type"], "bias", np.round(bias[col["span"]], 2), "counts", m.encoding_.span_counts_[col["span"]].astype(int))
m.span_bias_ = [np.zeros_like(b) for b in bias]
m.sample(n, seed=0).to_parquet(f"{out}/{label}_nobias_s0.parquet")
m.span_bias_ = bias
