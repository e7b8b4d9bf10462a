"""_DRAW_CHUNK A/B in one process (bytes identical by construction): rows per CPU s, workers=1, 100,000 rows,
alternating sizes, 3 rounds. python chunk.py SIZE,SIZE,... NAME=MODEL_DIR ..."""
import gc, sys, time, hashlib
import pandas as pd
import twinforge
import twinforge.models.autoregressive as ar
sizes = [int(x) for x in sys.argv[1].split(",")]
models = {}
for a in sys.argv[2:]:
    name, path = a.split("=", 1)
    if path.startswith("fit:"):
        sys.path.insert(0, "/work/wt-qa/benchmarks")
        from bench_auto import DATASETS
        from pathlib import Path
        real = pd.read_csv(Path("/work/shared/datasets") / DATASETS[path[4:]])
        order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
        df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
        m = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(df)
    else:
        m = twinforge.load(path)
    m.sample(1000, seed=0)
    models[name] = m
res = {}
for r in range(3):
    for name, m in models.items():
        digests = set()
        for s in sizes if r % 2 == 0 else sizes[::-1]:
            ar._DRAW_CHUNK = s
            gc.collect()
            c = time.process_time(); df = m.sample(100_000, seed=r, workers=1); cp = time.process_time() - c
            digests.add(hashlib.sha256(pd.util.hash_pandas_object(df).values.tobytes()).hexdigest())
            res.setdefault((name, s), []).append(100_000 / cp)
        assert len(digests) == 1, (name, r)
for (name, s), v in res.items():
    print(f"{name:8s} chunk {s:>9,d}: per CPU s best {max(v):8,.0f}  all {[round(x) for x in v]}", flush=True)
