"""Fit auto (current code) on the bench's training rows (seed 0, as bench_auto splits) and save: python fit_save.py NAME..."""
import sys, time
from pathlib import Path
import pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
from bench_auto import DATASETS
import twinforge
for name in sys.argv[1:]:
    real = pd.read_csv(Path("/work/shared/datasets") / DATASETS[name])
    order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
    df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        df.to_csv(Path(tmp) / "t.csv", index=False); df = pd.read_csv(Path(tmp) / "t.csv")
    md = twinforge.Metadata.detect(df)
    t = time.process_time()
    m = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(df, md)
    print(name, "fit CPU", round(time.process_time() - t, 1), "s width", m.config_["width"], "passes", len(m.groups_), flush=True)
    m.save(f"/tmp/ar22/models/{name}", overwrite=True)
