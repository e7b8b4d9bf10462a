import sys, json, numpy as np, pandas as pd
sys.path.insert(0, "/work/wt-dd/benchmarks")
from _ml_scores import features
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
d = sys.argv[1]; syns = sys.argv[2:]
ex = ["subject_id","fake_first_name","fake_last_name"]
tr = pd.read_csv(f"{d}/train.csv").drop(columns=ex); ho = pd.read_csv(f"{d}/holdout.csv").drop(columns=ex)
cols = [c for c in tr.columns if c != "result"]
xt = features(ho[cols], tr[cols]); yt = ho.result.astype(str).to_numpy()
classes = ["invalid","negative","positive"]
def run(name, df, drop=()):
    use = [c for c in cols if c not in drop]
    x = features(df[use], tr[use]); m = HistGradientBoostingClassifier(random_state=0).fit(x, df.result.astype(str))
    p = np.zeros((len(ho),3)); p[:, [classes.index(c) for c in m.classes_]] = m.predict_proba(features(ho[use], tr[use]))
    aucs = [roc_auc_score(yt == c, p[:, i]) for i, c in enumerate(classes)]
    print(f"{name:28s} drop={','.join(drop) or '-':24s} " + " ".join(f"{c}={a:.3f}" for c, a in zip(classes, aucs)) + f" macro={np.mean(aucs):.3f}", flush=True)
sets = {"real": tr, **{s.split("=")[0]: pd.read_parquet(s.split("=")[1]) for s in syns}}
for k, v in sets.items():
    run(k, v)
for k, v in sets.items():
    for drop in (["ct_result"], ["rec_ver_tat"], ["rec_ver_tat","col_rec_tat"]):
        run(k, v, drop)
