"""Fit ctgan as the bench does on SIDES/T/train.csv, sample len(train) rows at seeds; argv: table out seeds"""
import os, sys, time, pandas as pd, torch, twinforge
torch.set_num_threads(1)
t, out, seeds = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
os.makedirs(out, exist_ok=True)
df = pd.read_csv(f"/tmp/ctgan24/sides/{t}/train.csv")
md = twinforge.Metadata.detect(df)
c0 = time.process_time()
m = twinforge.create("ctgan", seed=0, progress=False).fit(df, md)
print(t, f"fit cpu {time.process_time()-c0:.1f}", flush=True)
for k in seeds:
    m.sample(len(df), seed=k).to_parquet(f"{out}/ctgan_s{k}.parquet")
