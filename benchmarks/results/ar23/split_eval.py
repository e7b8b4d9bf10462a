"""Score configurations on a split of bench_auto's TRAINING rows only (auto_train_split.split: 80% fitted, 20%
scored; the bench holdout is never read), with the bench's own scorers (SDMetrics quality, _extra_metrics).
python split_eval.py NAME OUTDIR '{"label": "base", "fit_seed": 0}' '{"label": "w64", "fit_seed": 1, "width": 64,
"mod": {"_PASS_COST": 0.05}}' ...  Per config: one fit, 3 sampling seeds of len(fit) rows (quality on the first
len(scored)), DCR share also over 8 extra draws, rows per CPU second (workers=1, 65,536 rows, best of 2)."""
import json, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd
B = "/work/wt-ar/benchmarks"  # session 23: DCR8 with the bench exclusions (ours and SDV's)
sys.path.insert(0, B)
from auto_train_split import split
from bench_auto import TARGETS
import _extra_metrics as xm
import twinforge
import twinforge.models.autoregressive as ar

name, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
SDV = str(Path.home() / ".cache/anchors/sdv/bin/python")
fit_df, scored = split(name)
fit_df.to_csv(out / "fit.csv", index=False)
scored.to_csv(out / "scored.csv", index=False)
fit_df = pd.read_csv(out / "fit.csv")
pd.read_csv(out / "scored.csv").to_parquet(out / "holdout.parquet", index=False)
meta = twinforge.Metadata.detect(fit_df)
excluded = [c for c in meta.columns if c not in meta.learned_columns]
subprocess.run([SDV, f"{B}/_sdv_anchor.py", "metadata", "--data", str(out / "fit.csv"), "--result-out",
                str(out / "sdv_meta.json")], check=True)
sdv_meta = json.loads((out / "sdv_meta.json").read_text())
excluded = sorted(set(excluded) | set(sdv_meta["not_learned"]))
fit_x, test_x = fit_df.drop(columns=excluded), pd.read_csv(out / "scored.csv").drop(columns=excluded)
enc = xm.Encoder(fit_x)
train_sample = fit_x.iloc[np.random.default_rng(0).choice(len(fit_x), len(test_x), replace=False)]
names = {"holdout": out / "holdout.parquet"}
full = dict(names)
info = {}
models = {}
for raw in sys.argv[3:]:
    cfg = json.loads(raw)
    label, mods, fs = cfg.pop("label"), cfg.pop("mod", {}), cfg.pop("fit_seed", 0)
    saved = {k: getattr(ar, k) for k in mods}
    for k, v in mods.items():
        setattr(ar, k, v)
    try:
        temp = cfg.pop("temperature", 1.0)
        reuse = cfg.pop("reuse", None)
        t = time.process_time()
        model = models[reuse] if reuse else twinforge.create("auto", seed=fs, progress=False, **cfg).fit(fit_df, meta)
        models[label] = model
        fit_cpu = time.process_time() - t
        for s in (0, 1, 2):
            df = model.sample(len(fit_df), seed=s, workers=1, temperature=temp)
            df.to_parquet(out / f"{label}_s{s}.parquet", index=False)
            df.iloc[: len(scored)].to_parquet(out / f"{label}_s{s}_q.parquet", index=False)
            full[f"{label}_s{s}"] = out / f"{label}_s{s}.parquet"
            names[f"{label}_s{s}"] = out / f"{label}_s{s}_q.parquet"
        draws = model.sample(8 * len(test_x), seed=10, temperature=temp)[fit_x.columns]
        shares = [xm.dcr_share(enc, draws.iloc[c * len(test_x):(c + 1) * len(test_x)], train_sample, test_x) for c in range(8)]
        rates = [float("nan")]
    finally:
        for k, v in saved.items():
            setattr(ar, k, v)
    info[label] = {"fit_cpu": round(fit_cpu, 1), "passes": len(model.groups_), "width": model.config_["width"],
                   "grouping_cost": round(getattr(model, "grouping_cost_", float("nan")), 3),
                   "epochs": model.train_info_.get("epochs"), "dcr8": round(float(np.mean(shares)), 4),
                   "best_val": round(model.train_info_.get("best_validation") or float("nan"), 4)}
    print(label, info[label], flush=True)
subprocess.run([SDV, f"{B}/_sdv_anchor.py", "quality", "--real", str(out / "fit.csv"), "--metadata-from",
                str(out / "sdv_meta.json"), *[f"--synthetic={k}={v}" for k, v in names.items()], "--exclude",
                ",".join(excluded), "--result-out", str(out / "quality.json")], check=True)
target = TARGETS[name] if TARGETS[name] not in (*excluded, None) else None
subprocess.run([SDV, f"{B}/_extra_metrics.py", "--train", str(out / "fit.csv"), "--holdout", str(out / "scored.csv"),
                *[f"--synthetic={k}={v}" for k, v in full.items()], "--exclude", ",".join(excluded), "--seed", "0",
                "--result-out", str(out / "extra.json"), *(["--target", target] if target else [])], check=True)
q = json.loads((out / "quality.json").read_text())["reports"]
e = json.loads((out / "extra.json").read_text())
print(f"{name} holdout: quality {q['holdout']['overall']:.4f}")
for label in info:
    ks = [f"{label}_s{s}" for s in (0, 1, 2)]
    qs = [q[k]["overall"] for k in ks]
    dets = [e[k]["detection_auc"] for k in ks]
    ts = [e[k]["tstr"] / e[k]["trtr"] for k in ks] if target else [float("nan")]
    dcrs = [e[k]["dcr_share"] for k in ks]
    print(f"{name} {label}: quality {np.mean(qs):.4f} {np.round(qs, 4).tolist()} det {np.mean(dets):.3f} "
          f"{np.round(dets, 3).tolist()} tstr/trtr {np.mean(ts):.3f} {np.round(ts, 3).tolist()} dcr {np.mean(dcrs):.3f} "
          f"dcr8 {info[label]['dcr8']} | {info[label]}", flush=True)
