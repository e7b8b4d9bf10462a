"""Fit ctgan (this worktree) on the inner 80% split of the bench's covid training rows (as sessions 21/23), save it,
sample len(inner) rows at sampling seeds 0,1,2. argv: label fit_seed params_json"""
import sys, json, time, os
import numpy as np, pandas as pd, torch, twinforge
torch.set_num_threads(1)
label, fseed, params = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
out = "/tmp/ctgan24/split"; os.makedirs(out, exist_ok=True)
inner = pd.read_csv("/tmp/ctgan23/split/covid/train.csv")
md = twinforge.Metadata.detect(inner)
c0 = time.process_time()
m = twinforge.create("ctgan", seed=fseed, progress=False, **params).fit(inner, md)
cpu = time.process_time() - c0
m.save(f"/tmp/ctgan24/models/{label}_f{fseed}", overwrite=True)
for s in (0, 1, 2):
    m.sample(len(inner), seed=s).to_parquet(f"{out}/{label}_f{fseed}_s{s}.parquet")
print(f"{label} fit seed {fseed} {params}: fit cpu {cpu:.1f} s, epochs {m.training_['epochs']}", flush=True)
