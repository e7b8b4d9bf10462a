"""Score saved draws with the bench's scorers (SDMetrics quality in the SDV venv; _extra_metrics): score.py DIR NAME LABEL [LABEL...]
Draws DIR/LABEL_s{0,1,2}.parquet (len(fit) rows; quality, detection and DCR on the first len(scored))."""
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
B = "/work/wt-ar/benchmarks"
sys.path.insert(0, B)
from bench_auto import TARGETS
import twinforge
d, name, labels = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
SDV = str(Path.home() / ".cache/anchors/sdv/bin/python")
fit = pd.read_csv(d / "fit.csv"); scored = pd.read_csv(d / "scored.csv")
if not (d / "sdv_meta.json").exists():
    subprocess.run([SDV, f"{B}/_sdv_anchor.py", "metadata", "--data", str(d / "fit.csv"), "--result-out", str(d / "sdv_meta.json")], check=True)
    scored.to_parquet(d / "holdout.parquet", index=False)
meta = twinforge.Metadata.detect(fit)
excluded = [c for c in meta.columns if c not in meta.learned_columns]
excluded = sorted(set(excluded) | set(json.loads((d / "sdv_meta.json").read_text())["not_learned"]))
names, full = {"holdout": d / "holdout.parquet"}, {"holdout": d / "holdout.parquet"}
for lab in labels:
    for s in (0, 1, 2):
        df = pd.read_parquet(d / f"{lab}_s{s}.parquet")
        df.iloc[: len(scored)].to_parquet(d / f"{lab}_s{s}_q.parquet", index=False)
        names[f"{lab}_s{s}"], full[f"{lab}_s{s}"] = d / f"{lab}_s{s}_q.parquet", d / f"{lab}_s{s}.parquet"
tag = "_".join(labels)[:60]
subprocess.run([SDV, f"{B}/_sdv_anchor.py", "quality", "--real", str(d / "fit.csv"), "--metadata-from", str(d / "sdv_meta.json"),
                *[f"--synthetic={k}={v}" for k, v in names.items()], "--exclude", ",".join(excluded),
                "--result-out", str(d / f"quality_{tag}.json")], check=True)
target = TARGETS[name] if TARGETS[name] not in (*excluded, None) else None
subprocess.run([SDV, f"{B}/_extra_metrics.py", "--train", str(d / "fit.csv"), "--holdout", str(d / "scored.csv"),
                *[f"--synthetic={k}={v}" for k, v in full.items()], "--exclude", ",".join(excluded), "--seed", "0",
                "--result-out", str(d / f"extra_{tag}.json"), *(["--target", target] if target else [])], check=True)
q = json.loads((d / f"quality_{tag}.json").read_text())["reports"]
e = json.loads((d / f"extra_{tag}.json").read_text())
print(f"{name} holdout: quality {q['holdout']['overall']:.4f} det {e['holdout']['detection_auc']:.3f}")
for lab in labels:
    ks = [f"{lab}_s{s}" for s in (0, 1, 2)]
    qs = [q[k]["overall"] for k in ks]; dets = [e[k]["detection_auc"] for k in ks]
    ts = [e[k]["tstr"] / e[k]["trtr"] for k in ks] if target else [float("nan")]
    dcrs = [e[k]["dcr_share"] for k in ks]
    print(f"{name} {lab}: quality {np.mean(qs):.4f} {np.round(qs, 4).tolist()} det {np.mean(dets):.3f} {np.round(dets, 3).tolist()} "
          f"tstr/trtr {np.mean(ts):.3f} {np.round(ts, 3).tolist()} dcr {np.mean(dcrs):.3f} {np.round(dcrs, 3).tolist()}", flush=True)
