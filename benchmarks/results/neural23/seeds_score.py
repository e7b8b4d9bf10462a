import sys, glob
sys.path.insert(0, "/work/wt-nn/benchmarks")
import numpy as np, pandas as pd
from _ml_scores import utility, detection_auc
d, target, task = sys.argv[1:4]
train, hold = pd.read_csv(f"{d}/train.csv"), pd.read_csv(f"{d}/holdout.csv")
trtr = utility(train, hold, target, task, train, 0)
for pat in sys.argv[4:]:
    r = []
    for p in sorted(glob.glob(pat)):
        s = pd.read_parquet(p)
        r.append((utility(s, hold, target, task, train, 0) / trtr, detection_auc(hold, s, train, 0), s[["dep_delay", "arr_delay"]].corr().iloc[0, 1]))
    r = np.array(r)
    print(pat.split("/")[-1], "TSTR/TRTR", r[:, 0].round(3), round(r[:, 0].mean(), 3), "det", r[:, 1].round(3), round(r[:, 1].mean(), 3), "corr", r[:, 2].round(3))
