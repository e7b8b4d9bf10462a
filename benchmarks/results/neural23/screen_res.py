"""fit_residuals on every bench table's training split (seed 0, 20% holdout; flights capped at 5,000 rows)."""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, "/work/wt-nn/benchmarks")
import pandas as pd, twinforge
from bench_neural import DATASETS, split
from twinforge.models.vae import fit_residuals
from twinforge.models._tabular_nn import fit_keylike, without
for name, f in DATASETS.items():
    with tempfile.TemporaryDirectory() as tmp:
        train, _ = split(Path("/work/shared/datasets") / f, Path(tmp), 0.2, 0, 5000 if name == "flights" else None)
        df = pd.read_csv(train)
    md = twinforge.Metadata.detect(df)
    from twinforge.transforms import TableTransformer
    tt = TableTransformer().fit(df, md)
    arrays = tt.transform(df)
    arrays = without(arrays, fit_keylike(arrays, tt.transforms_, False))
    print(name, {y: (s["input"], round(s["slope"], 3)) for y, s in fit_residuals(arrays, tt.transforms_, False).items()}, flush=True)
