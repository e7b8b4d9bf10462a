"""One fit (seed 0) + one unconditional draw (seed 0) of auto on flights and weather, on a split of bench_auto's
training rows (auto_train_split.split); prints sample hashes, relation shares, TSTR/TRTR; writes parquet.
usage: PYTHONPATH=SRC python check.py TAG [names...]"""
import hashlib, sys, time
sys.path.insert(0, "/work/wt-dv/benchmarks")
import numpy as np, pandas as pd
import _extra_metrics as xm
from auto_train_split import split
from bench_auto import TARGETS
import twinforge
tag = sys.argv[1]
print("twinforge from", twinforge.__file__)
for name in sys.argv[2:] or ["weather", "flights"]:
    fit_df, scored = split(name)
    meta = twinforge.Metadata.detect(fit_df)
    excluded = [c for c in meta.columns if c not in meta.learned_columns]
    fit_x, test_x = fit_df.drop(columns=excluded), scored.drop(columns=excluded)
    t = time.process_time()
    model = twinforge.create("auto", seed=0, progress=False).fit(fit_df, meta)
    fit_cpu = time.process_time() - t
    derived = {c["column"]: c["derive"]["reference"] for c in model.columns_ if "derive" in c}
    s = model.sample(len(fit_df), seed=0)
    h = hashlib.sha256(pd.util.hash_pandas_object(s, index=True).values.tobytes()).hexdigest()[:16]
    s.to_parquet(f"/tmp/derive21/{tag}_{name}.parquet")
    fit_df.to_csv(f"/tmp/derive21/train_{name}.csv", index=False)
    enc = xm.Encoder(fit_x)
    u = xm.utility(enc, s[fit_x.columns], fit_x, test_x, TARGETS[name], 0)
    miss = {c: (round(float(fit_df[c].isna().mean()), 4), round(float(s[c].isna().mean()), 4)) for c in derived}
    print(f"{tag} {name} hash {h} fit {fit_cpu:.0f} CPU s derived {derived} missing real/synth {miss} "
          f"TSTR/TRTR {u['tstr'] / u['trtr']:.4f}", flush=True)
