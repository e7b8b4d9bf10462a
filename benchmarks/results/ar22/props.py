"""Per bench table (bench training rows): rows, learned columns, tokens, width now, parameter count."""
import sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np, pandas as pd
from bench_auto import DATASETS
import twinforge
import twinforge.models.autoregressive as ar
from twinforge.transforms import TableTransformer  # noqa
for name in sys.argv[1:]:
    real = pd.read_csv(f"/work/shared/datasets/{DATASETS[name]}")
    order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
    df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
    meta = twinforge.Metadata.detect(df)
    m = twinforge.create("auto", seed=0)
    m.transformer_ = TableTransformer().fit(df, meta)
    arrays = m.transformer_.transform(df)
    cols = [ar._plan(k, a, m.transformer_.transforms_[k], 32, 500) for k, a in arrays.items()]
    T = sum(ar._n_tokens(c) for c in cols)
    n = len(df); w = ar._auto_width(n, T)
    types = {}
    for c in cols: types[c["type"]] = types.get(c["type"], 0) + 1
    params = 2 * T * w + w * w
    print(f"{name}: n={n} d={len(cols)} T={T} T/d={T/len(cols):.0f} n/T={n/T:.1f} width={w} params~{params:,} n/param={n/params:.3f} types={types}", flush=True)
