"""Fit ctgan as the bench does (seed 0, defaults) on the bench side's train.csv; sample len(train) rows at sampling
seeds 0,1,2 into OUT/ctgan_s{k}.parquet; check seed 0 equals the bench's draw. argv: sides_dir out"""
import json, os, shutil, sys, time
import pandas as pd, torch, twinforge
torch.set_num_threads(1)
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
for f in ("train.csv", "holdout.csv"):
    shutil.copy(f"{src}/{f}", out)
df = pd.read_csv(f"{src}/train.csv")
md = twinforge.Metadata.detect(df)
c0 = time.process_time()
m = twinforge.create("ctgan", seed=0, progress=False).fit(df, md)
print(f"fit cpu {time.process_time() - c0:.1f} s, epochs {m.training_['epochs']}", flush=True)
m.save(f"{out}/model", overwrite=True)
for k in (0, 1, 2):
    m.sample(len(df), seed=k).to_parquet(f"{out}/ctgan_s{k}.parquet")
a = pd.read_parquet(f"{src}/ctgan.parquet"); b = pd.read_parquet(f"{out}/ctgan_s0.parquet")
print("seed-0 draw equals the bench side:", a.equals(b), flush=True)
