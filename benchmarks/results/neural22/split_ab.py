"""Split A/B of ctgan's derived columns: fit on an inner 80% of the bench's seed-0 training rows (the split of
session 21), sample sampling seeds 0,1,2 with the derived columns (der_s*) and without them (base_s*, same draws).
argv: dataset sides_dir"""
import json, os, sys, time
import pandas as pd, torch, twinforge
torch.set_num_threads(1)
name, sides = sys.argv[1], sys.argv[2]
out = f"/tmp/neural22/split/{name}"; os.makedirs(out, exist_ok=True)
train = pd.read_csv(f"{sides}/{name}/train.csv")
hold = train.sample(frac=0.2, random_state=0)
inner = train.drop(index=hold.index)
inner.to_csv(f"{out}/train.csv", index=False); hold.to_csv(f"{out}/holdout.csv", index=False)
md = twinforge.Metadata.detect(inner)
c0 = time.process_time()
m = twinforge.create("ctgan", seed=0, progress=False).fit(inner, md)
print(f"{name}: fit cpu {time.process_time() - c0:.1f} s, epochs {m.training_['epochs']}, derived {list(m.derived_)}", flush=True)
derived = m.derived_
for k in (0, 1, 2):
    m.derived_ = derived
    m.sample(len(inner), seed=k).to_parquet(f"{out}/der_s{k}.parquet")
    m.derived_ = {}
    m.sample(len(inner), seed=k).to_parquet(f"{out}/base_s{k}.parquet")
json.dump({"exclude": [c for c in md.columns if c not in md.learned_columns]}, open(f"{out}/exclude.json", "w"))
