"""Is DCR share 0.5 for fresh real rows, and what does an independent-marginals sampler score? (no model)"""
import json, sys
sys.path.insert(0, "/work/main/benchmarks")
import numpy as np, pandas as pd
from _extra_metrics import Encoder, dcr_share
import bench_auto as B
prev = json.load(open("/work/main/benchmarks/results/auto.json"))["datasets"]
for name in sys.argv[1:]:
    real = pd.read_csv(f"/work/shared/datasets/{B.DATASETS[name]}")
    ex = prev[name].get("excluded", [])
    real = real.drop(columns=[c for c in ex if c in real])
    out = {}
    for seed in range(3):
        order = pd.Series(range(len(real))).sample(frac=1.0, random_state=seed).to_numpy()
        n = round(len(real) * 0.2)
        hold, fresh, train = real.iloc[order[:n]], real.iloc[order[n:2*n]], real.iloc[order[2*n:]]
        enc = Encoder(train)
        rng = np.random.default_rng(seed)
        ts = train.iloc[rng.choice(len(train), n, replace=False)]
        marg = pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, len(train), n)] for c in train})
        # marginals from the holdout's side instead (control for symmetry)
        for k, v in {"fresh": fresh, "marg_train": marg}.items():
            out.setdefault(k, []).append(dcr_share(enc, v, ts, hold))
    print(name, {k: np.round(v, 3).tolist() for k, v in out.items()}, flush=True)
