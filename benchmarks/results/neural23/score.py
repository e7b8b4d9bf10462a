"""Anchor venv: score every OUT/*_s*.parquet against OUT/scored.csv (trained-on OUT/fit.csv). argv: out target task [corr pair]"""
import glob, json, sys, re
sys.path.insert(0, "/work/wt-nn/benchmarks")
import numpy as np, pandas as pd
from _ml_scores import utility, detection_auc
out, target, task = sys.argv[1:4]
pair = sys.argv[4].split(",") if len(sys.argv) > 4 else None
fit, scored = pd.read_csv(f"{out}/fit.csv"), pd.read_csv(f"{out}/scored.csv")
trtr = utility(fit, scored, target, task, fit, 0)
rows = {}
for p in sorted(glob.glob(f"{out}/*_s[0-9].parquet")):
    syn = pd.read_parquet(p)
    key = re.sub(r"_s\d\.parquet$", "", p.split("/")[-1])
    r = {"tstr_trtr": utility(syn, scored, target, task, fit, 0) / trtr, "det": detection_auc(scored, syn, fit, 0)}
    if pair:
        r["corr"] = float(syn[pair].corr().iloc[0, 1])
    rows.setdefault(key, []).append(r)
print("trtr", round(trtr, 4), "real corr", round(float(fit[pair].corr().iloc[0, 1]), 3) if pair else "")
for key, rs in rows.items():
    agg = {k: [round(x[k], 3) for x in rs] for k in rs[0]}
    print(key, {k: (v, round(float(np.mean(v)), 3)) for k, v in agg.items()})
