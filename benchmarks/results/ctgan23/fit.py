"""Fit ctgan (this worktree's source) on the inner 80% split of the bench's covid training rows (as session 21),
sample len(inner) rows at sampling seeds 0,1,2 into OUT/LABEL_s{k}.parquet. argv: label fit_seed params_json [dataset]"""
import sys, json, time, os
import pandas as pd, torch, twinforge
torch.set_num_threads(1)
label, fseed, params = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
name = sys.argv[4] if len(sys.argv) > 4 else "covid"
src = "/tmp/neural21/sides"
out = f"/tmp/ctgan23/split/{name}"; os.makedirs(out, exist_ok=True)
train = pd.read_csv(f"{src}/{name}/train.csv")
hold = train.sample(frac=0.2, random_state=0); inner = train.drop(index=hold.index)
if not os.path.exists(f"{out}/train.csv"):
    inner.to_csv(f"{out}/train.csv", index=False); hold.to_csv(f"{out}/holdout.csv", index=False)
md = twinforge.Metadata.detect(inner)
c0 = time.process_time()
m = twinforge.create("ctgan", seed=fseed, progress=False, **params).fit(inner, md)
cpu = time.process_time() - c0
for s in (0, 1, 2):
    m.sample(len(inner), seed=s).to_parquet(f"{out}/{label}_f{fseed}_s{s}.parquet")
json.dump({"exclude": [c for c in md.columns if c not in md.learned_columns]}, open(f"{out}/exclude.json", "w"))
print(f"{name} {label} fit seed {fseed} {params}: fit cpu {cpu:.1f} s, epochs {m.training_['epochs']}", flush=True)
