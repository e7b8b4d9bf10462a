"""Fit auto on a split of bench_auto's training rows (auto_train_split.split), save the model and 3 draws,
print TSTR/TRTR per draw (bench metric code). Usage: fitsave.py NAME OUTDIR LABEL '{cfg}' [...]"""
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-ar/benchmarks")
from auto_train_split import split
from bench_auto import TARGETS
import _extra_metrics as xm
import twinforge
import twinforge.models.autoregressive as ar

name, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
fit_df, scored = split(name)
fit_df.to_csv(out / "fit.csv", index=False); scored.to_csv(out / "scored.csv", index=False)
meta = twinforge.Metadata.detect(fit_df)
excluded = [c for c in meta.columns if c not in meta.learned_columns]
fit_x, test_x = fit_df.drop(columns=excluded), scored.drop(columns=excluded)
enc = xm.Encoder(fit_x)
for raw in sys.argv[3:]:
    cfg = json.loads(raw)
    label, mods, fs = cfg.pop("label"), cfg.pop("mod", {}), cfg.pop("fit_seed", 0)
    saved = {k: getattr(ar, k) for k in mods}
    for k, v in mods.items():
        setattr(ar, k, v)
    try:
        t = time.process_time()
        model = twinforge.create("auto", seed=fs, progress=False, **cfg).fit(fit_df, meta)
        fit_cpu = time.process_time() - t
        model.save(out / f"model_{label}")
        ratios = []
        for s in (0, 1, 2):
            df = model.sample(len(fit_df), seed=s, workers=1)
            df.to_parquet(out / f"{label}_s{s}.parquet", index=False)
            u = xm.utility(enc, df[fit_x.columns], fit_x, test_x, TARGETS[name], 0)
            ratios.append(u["tstr"] / u["trtr"])
    finally:
        for k, v in saved.items():
            setattr(ar, k, v)
    refs = {c["column"]: (c["type"], c.get("reference"), c.get("derive", {}).get("reference")) for c in model.columns_
            if "reference" in c or "derive" in c}
    print(label, f"TSTR/TRTR {np.mean(ratios):.4f} {np.round(ratios, 4).tolist()} trtr {u['trtr']:.4f} fit {fit_cpu:.1f}s",
          f"epochs {model.train_info_.get('epochs')} width {model.config_['width']} refs {refs}", flush=True)
