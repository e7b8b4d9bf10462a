import sys; sys.path.insert(0, "/work/wt-dv")
import numpy as np, pandas as pd, twinforge
from tests.test_autoregressive import _clock_table
FAST = dict(progress=False)
data = _clock_table(2000, 3)
f = twinforge.create("auto", seed=0, epochs=3, **FAST).fit(data)
def rel(o):
    sched_ok = (o.sched == 100 * o.hour + o.minute)
    m = 60 * (o.dep // 100) + o.dep % 100; s = 60 * (o.sched // 100) + o.sched % 100
    k = o.delay.notna() & o.dep.notna()
    dep_ok = ((m - s - o.delay) % 1440 == 0)[k]
    tot_ok = ((o.total - o.a - o.b).abs() <= 0.011)
    return f"sched {sched_ok.mean():.3f} dep {dep_ok.mean():.3f} total {tot_ok.mean():.3f}"
print("real", rel(data))
print("uncond", rel(f.sample(2000, seed=0)))
for c in [{"sched": 745}, {"sched": (1200, 1300)}, {"dep": (1200, 1300)}, {"total": (100, 200)}, {"total": 15.0}]:
    o = f.sample(500, seed=1, conditions=c); print(c, rel(o))
o = f.sample(300, seed=1, seed_data=pd.DataFrame({"total": np.full(300, 15.0)})); print("seed total", rel(o))
rows = data[data.delay.notna()].head(90).copy()
rows.iloc[:30, rows.columns.get_loc("delay")] = np.nan
rows.iloc[30:60, rows.columns.get_loc("a")] = np.nan
rows.iloc[60:, [rows.columns.get_loc("a"), rows.columns.get_loc("total")]] = np.nan
fi = f.impute(rows, seed=0)
print("impute delay", rel(fi.iloc[:30]), "impute a", rel(fi.iloc[30:60]), "impute a+total", rel(fi.iloc[60:]))
# missing input
rng = np.random.default_rng(0); n = 3000
a = rng.integers(0, 500, n); b = rng.integers(-50, 50, n); d = pd.DataFrame({"a": a.astype(float), "b": b.astype(float), "c": (a + b).astype(float)})
d.loc[rng.random(n) < 0.05, "a"] = np.nan; d.loc[d.a.isna(), "c"] = np.nan
for ep in (1, 3):
    f3 = twinforge.create("auto", seed=0, epochs=ep, **FAST).fit(d)
    s = f3.sample(3000, seed=0)
    print("missing input ep", ep, [x["column"] for x in f3.columns_ if "derive" in x], "hold", (s.c == s.a + s.b)[s.a.notna()].mean(), "c na where a na", s.c[s.a.isna()].isna().mean(), "a na", s.a.isna().mean(), "c na overall", s.c.isna().mean(), "real", d.c.isna().mean())
# datetime
day = rng.integers(0, 365, n); hour = rng.integers(0, 24, n)
d = pd.DataFrame({"day": day, "hour": hour, "ts": pd.Timestamp("2013-01-01") + pd.to_timedelta(day * 24 + hour, unit="h"), "x": rng.normal(size=n).round(2)})
f4 = twinforge.create("auto", seed=0, epochs=1, **FAST).fit(d)
print("dt derived", {x["column"]: (x["derive"]["reference"], x["derive"]["slope"], x["type"]) for x in f4.columns_ if "derive" in x})
s = f4.sample(2000, seed=0)
print("dt hold", (s.ts == pd.Timestamp("2013-01-01") + pd.to_timedelta(s.day * 24 + s.hour, unit="h")).mean())
