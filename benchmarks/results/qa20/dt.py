import numpy as np, pandas as pd, twinforge
rng = np.random.default_rng(0); n = 3000
day = rng.integers(0, 365, n); hour = rng.integers(0, 24, n)
d = pd.DataFrame({"day": day, "hour": hour, "ts": pd.Timestamp("2013-01-01") + pd.to_timedelta(day * 24 + hour, unit="h"), "x": rng.normal(size=n).round(2)})
f4 = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
c = [x for x in f4.columns_ if "derive" in x][0]
print({k: v for k, v in c["derive"].items() if k != "residuals"}, c["derive"]["residuals"][[0, -1]], c["type"])
s = f4.sample(2000, seed=0)
e = s.ts - (pd.Timestamp("2013-01-01") + pd.to_timedelta(s.day * 24 + s.hour, unit="h"))
print(e.value_counts().head(), s.ts.min(), s.ts.max(), d.ts.min(), d.ts.max())
