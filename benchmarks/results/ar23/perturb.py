import json, sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np, pandas as pd
from _extra_metrics import Encoder, dcr_share
import bench_auto as B
KS = [int(k) for k in __import__("os").environ.get("KS", "0,2,8,32,128").split(",")]
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
        copies = train.iloc[rng.integers(0, len(train), n)].reset_index(drop=True)
        out.setdefault("fresh", []).append(dcr_share(enc, fresh, ts, hold))
        for K in KS:
            pert = copies.copy()
            for c in train.columns:
                if enc.kinds[c] != "num":
                    continue
                srt = np.sort(train[c].dropna().to_numpy(float))
                x = pert[c].to_numpy(float)
                ok = ~np.isnan(x)
                idx = np.searchsorted(srt, x[ok])
                idx = np.clip(idx + rng.integers(-K, K + 1, ok.sum()), 0, len(srt) - 1)
                x[ok] = srt[idx]
                pert[c] = x
            out.setdefault(f"copies_rank+-{K}", []).append(dcr_share(enc, pert, ts, hold))
    print(name, {k: (round(float(np.mean(v)), 3), np.round(v, 3).tolist()) for k, v in out.items()}, flush=True)
