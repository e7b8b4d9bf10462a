"""Fit tvae as the bench does (seed 0, defaults) on DIR/train.csv; sample len(train) rows at seeds 0,1,2."""
import sys, time, pandas as pd, torch, twinforge
torch.set_num_threads(1)
d = sys.argv[1]
df = pd.read_csv(f"{d}/train.csv")
c0 = time.process_time()
m = twinforge.create("tvae", seed=0, progress=False).fit(df, twinforge.Metadata.detect(df))
print("tvae fit cpu", round(time.process_time() - c0, 1), "residuals", {y: s["input"] for y, s in m.residuals_.items()}, flush=True)
for k in (0, 1, 2):
    m.sample(len(df), seed=k).to_parquet(f"{d}/tvae_s{k}.parquet")
b = pd.read_parquet(f"{d}/tvae.parquet"); print("seed-0 draw equals the bench side's:", b.equals(pd.read_parquet(f"{d}/tvae_s0.parquet")))
