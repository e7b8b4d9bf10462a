import sys
sys.path.insert(0, "/work/wt-nn/benchmarks")
import numpy as np, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from _ml_scores import features
D = "/tmp/neural22/sides/covid/"
train, hold = pd.read_csv(D + "train.csv"), pd.read_csv(D + "holdout.csv")
ex = ["subject_id", "fake_first_name", "fake_last_name"]
train, hold = train.drop(columns=ex, errors="ignore"), hold.drop(columns=ex, errors="ignore")
cols = [c for c in train.columns if c != "result"]
xt = features(hold[cols], train[cols])
for name in ("real", "ctgan", "sdv_ctgan"):
    syn = train if name == "real" else pd.read_parquet(D + f"{name}.parquet").drop(columns=ex, errors="ignore")
    m = HistGradientBoostingClassifier(random_state=0).fit(features(syn[cols], train[cols]), syn["result"].astype(str))
    p = m.predict_proba(xt)
    aucs = {c: round(roc_auc_score(hold["result"] == c, p[:, list(m.classes_).index(c)]), 3) for c in m.classes_}
    print(name, syn["result"].value_counts(normalize=True).round(4).to_dict(), aucs, flush=True)
    for c in ("positive", "invalid"):
        s = syn[syn.result == c]
        print("   ", c, "ct_result: nan", round(s.ct_result.isna().mean(), 3), "==45", round((s.ct_result == 45).mean(), 3),
              "median", s.ct_result.median(), "| clinic top", s.clinic_name.value_counts(normalize=True).head(3).round(3).to_dict(),
              "| rec_ver_tat med", round(s.rec_ver_tat.median(), 2), "col_rec med", round(s.col_rec_tat.median(), 2), "pan_day med", s.pan_day.median())
