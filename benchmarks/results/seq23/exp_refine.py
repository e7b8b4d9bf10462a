import copy
import json
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import torch
from common import *
from rollout import refine

name = sys.argv[1]
seed = int(sys.argv[2])
variants = sys.argv[3].split(";")
fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
base = get_model(name, seed)


def evaluate(m, label):
    for k in (10, 25):
        history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
        fcs = {
            e: m.forecast(history.iloc[r].reset_index(drop=True), HORIZON, PATHS, seed=0)
            for e, r in history.groupby(ek, sort=False).indices.items()
        }
        g = score(fcs, actual, ek, tk, numeric, scale)
        print(
            f"{label:<40} k={k} CRPS {g.mean():.4f} blocks "
            + " ".join(f"{g[:, a : a + 5].mean():.3f}" for a in range(0, HORIZON, 5)),
            flush=True,
        )


if "base" in variants:
    evaluate(base, "base")
for v in variants:
    if v == "base":
        continue
    kw = json.loads(v) if v.startswith("{") else {}
    m = copy.deepcopy(base)
    torch.manual_seed(0)
    t = time.process_time()
    refine(m, fit_df, **kw)
    print(f"refine {kw}: {time.process_time() - t:.1f} cpu s", flush=True)
    evaluate(m, json.dumps(kw))
