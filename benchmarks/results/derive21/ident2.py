import sys; sys.path.append("/work/wt-dv")
import numpy as np, pandas as pd, twinforge
from tests.test_autoregressive import _clock_table
d = _clock_table(1500, 3)
f = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
s = f.sample(3000, seed=0)
print(twinforge.__file__.split("/")[3], "total == a + b exactly (2 dp)", (np.round(s.a + s.b, 2) == s.total).mean(),
      "dep missing where delay missing", s.dep[s.delay.isna()].isna().mean(), "dep missing", s.dep.isna().mean(), "real", d.dep.isna().mean())
