import json, sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np, pandas as pd
from _extra_metrics import Encoder, dcr_share
import bench_auto as B
prev = json.load(open("/work/wt-ar/benchmarks/results/auto.json"))["datasets"]
for name in sys.argv[1:]:
    real = pd.read_csv(f"/work/shared/datasets/{B.DATASETS[name]}")
    real = real.drop(columns=[c for c in prev[name].get("excluded", []) if c in real])
    out = {}
    for seed in range(4):
        order = pd.Series(range(len(real))).sample(frac=1.0, random_state=seed).to_numpy()
        n = round(len(real) * 0.2)
        hold, fresh, train = real.iloc[order[:n]], real.iloc[order[n:2*n]], real.iloc[order[2*n:]]
        enc = Encoder(train)
        rng = np.random.default_rng(seed)
        ts = train.iloc[rng.choice(len(train), n, replace=False)]
        marg_t = pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, len(train), n)] for c in train})
        marg_f = pd.DataFrame({c: fresh[c].to_numpy()[rng.integers(0, len(fresh), n)] for c in train})
        boot_f = fresh.iloc[rng.integers(0, len(fresh), n)]
        for k, v in {"fresh": fresh, "marg_train": marg_t, "marg_fresh": marg_f}.items():
            out.setdefault(k, []).append(dcr_share(enc, v, ts, hold))
    print(name, {k: (round(float(np.mean(v)), 3), np.round(v, 3).tolist()) for k, v in out.items()}, flush=True)
