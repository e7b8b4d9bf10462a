import sys, time; sys.path.insert(0, "/work/wt-ar")
import numpy as np, pandas as pd, twinforge
import twinforge.models.autoregressive as ar
from tests.test_autoregressive import _clock_table
T = {}
orig = ar._derivations
def timed(c, a):
    t = time.time(); orig(c, a); T["d"] = time.time() - t
ar._derivations = timed
data = _clock_table(2000, 3)
f = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(data)
o = f.sample(300, seed=1, seed_data=pd.DataFrame({"a": np.full(300, 10.0), "b": np.full(300, 5.0)}))
print("seed a,b exact", (o.total == 15).mean(), o.total.iloc[0] - 15)
u = f.sample(2000, seed=0); print("uncond total exact to 2dp", (np.round(u.a + u.b, 2) == u.total).mean(), "bit-exact", (u.a + u.b == u.total).mean())
# exceptions 0.5% and 2%
rng = np.random.default_rng(0); n = 3000
for share in (0.005, 0.02):
    a = np.round(rng.gamma(2, 50, n), 2); b = np.round(rng.normal(0, 30, n), 2); c = a + b
    bad = rng.random(n) < share; c[bad] += np.round(rng.normal(0, 20, bad.sum()), 2)
    d = pd.DataFrame({"a": a, "b": b, "c": c})
    f2 = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
    s = f2.sample(3000, seed=0)
    print("exc", share, "derived", [x["column"] for x in f2.columns_ if "derive" in x], "real hold", (np.abs(d.c - d.a - d.b) < 0.011).mean(), "synth hold", (np.abs(s.c - s.a - s.b) < 0.011).mean())
# integer derived, NaN input
a = rng.integers(0, 500, n); b = rng.integers(-50, 50, n); d = pd.DataFrame({"a": a.astype(float), "b": b.astype(float), "c": (a + b).astype(float)})
d.loc[rng.random(n) < 0.05, "a"] = np.nan; d.loc[d.a.isna(), "c"] = np.nan
f3 = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
s = f3.sample(3000, seed=0)
print("int derived", [x["column"] for x in f3.columns_ if "derive" in x], s.dtypes.to_dict(), "hold", (s.c == s.a + s.b)[s.a.notna()].mean(), "whole", (s.c.dropna() % 1 == 0).mean(), "c na where a na", s.c[s.a.isna()].isna().mean(), "real", d.c[d.a.isna()].isna().mean())
# datetime from day and hour
day = rng.integers(0, 365, n); hour = rng.integers(0, 24, n)
d = pd.DataFrame({"day": day, "hour": hour, "ts": pd.Timestamp("2013-01-01") + pd.to_timedelta(day * 24 + hour, unit="h"), "x": rng.normal(size=n).round(2)})
f4 = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
s = f4.sample(2000, seed=0)
print("datetime derived", {x["column"]: x["derive"]["reference"] for x in f4.columns_ if "derive" in x}, s.ts.dtype, "hold", (s.ts == pd.Timestamp("2013-01-01") + pd.to_timedelta(s.day * 24 + s.hour, unit="h")).mean())
o = f4.sample(200, seed=0, conditions={"ts": (pd.Timestamp("2013-03-01"), pd.Timestamp("2013-03-31"))})
print("dt cond honoured", o.ts.between(pd.Timestamp("2013-03-01"), pd.Timestamp("2013-03-31")).mean(), "hold", (o.ts == pd.Timestamp("2013-01-01") + pd.to_timedelta(o.day * 24 + o.hour, unit="h")).mean())
# DP
fd = twinforge.create("auto", seed=0, epochs=1, epsilon=5.0, progress=False).fit(data)
print("dp derived", [x["column"] for x in fd.columns_ if "derive" in x])
# wide
W = pd.DataFrame(np.round(rng.normal(size=(5000, 60)) * 10, 2), columns=[f"v{i}" for i in range(60)])
W["s"] = W.v0 + W.v1
t = time.time(); fw = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(W); 
print("wide fit", round(time.time() - t, 1), "derivations s", round(T["d"], 1), [x["column"] for x in fw.columns_ if "derive" in x])
