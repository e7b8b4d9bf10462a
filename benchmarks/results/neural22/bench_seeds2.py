"""Fit ctgan as the bench does (seed 0, defaults) on a bench side's train.csv; sample len(train) rows at sampling
seeds 0, 1, 2 into OUT/ctgan_s{k}.parquet (seed 0 = the bench's own draw), and without the derived columns into
OUT/ctgan_nod_s{k}.parquet when there are any. argv: sides_dir out exclude(comma)"""
import json, os, shutil, sys, time
import pandas as pd, torch, twinforge
torch.set_num_threads(1)
src, out, exclude = sys.argv[1], sys.argv[2], [c for c in sys.argv[3].split(",") if c]
MODEL = sys.argv[4] if len(sys.argv) > 4 else "ctgan"
os.makedirs(out, exist_ok=True)
for f in ("train.csv", "holdout.csv"):
    shutil.copy(f"{src}/{f}", out)
df = pd.read_csv(f"{src}/train.csv")
md = twinforge.Metadata.detect(df)
c0 = time.process_time()
m = twinforge.create(MODEL, seed=0, progress=False).fit(df, md)
derived = getattr(m, "derived_", {})
print(f"{MODEL} fit cpu {time.process_time() - c0:.1f} s, derived {list(derived)}", flush=True)
derived = getattr(m, "derived_", {})
for k in (0, 1, 2):
    m.derived_ = derived
    m.sample(len(df), seed=k).to_parquet(f"{out}/{MODEL}_s{k}.parquet")
    if derived:
        m.derived_ = {}
        m.sample(len(df), seed=k).to_parquet(f"{out}/{MODEL}_nod_s{k}.parquet")
json.dump({"exclude": exclude}, open(f"{out}/exclude.json", "w"))
a = pd.read_parquet(f"{src}/{MODEL}.parquet")
b = pd.read_parquet(f"{out}/{MODEL}_{'nod_' if derived else ''}s0.parquet")
print("seed-0 draw (without derived columns) equals the session-21 bench side:", a.equals(b), flush=True)
