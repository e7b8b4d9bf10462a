import sys; sys.path.insert(0, "/work/wt-ar")
import numpy as np, pandas as pd, twinforge
from tests.test_autoregressive import _clock_table
data = _clock_table(2000, 3)
f = twinforge.create("auto", seed=0, epochs=3, progress=False).fit(data)
print([[f.columns_[i]["column"] for i in g] for g in f.groups_])
miss = data.head(20).copy(); miss.loc[:9, "dep"] = np.nan; miss.loc[10:, "total"] = np.nan
im = f.impute(miss, seed=0)
print(pd.concat([data.head(20)[["sched","delay","dep","a","b","total"]], im[["dep","total"]]], axis=1))
