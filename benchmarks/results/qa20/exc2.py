import numpy as np, pandas as pd, twinforge
rng = np.random.default_rng(0); n = 3000
a = np.round(rng.gamma(2, 50, n), 2); b = np.round(rng.normal(0, 30, n), 2); c = a + b
bad = rng.random(n) < 0.005; c[bad] += np.round(rng.normal(0, 20, bad.sum()), 2)
d = pd.DataFrame({"a": a, "b": b, "c": c})
f = twinforge.create("auto", seed=0, epochs=1, progress=False).fit(d)
s = f.sample(3000, seed=0)
print("derived", {x["column"]: x["derive"]["reference"] for x in f.columns_ if "derive" in x}, "real", (np.abs(d.c-d.a-d.b) < 0.011).mean(), "synth", (np.abs(s.c-s.a-s.b) < 0.011).mean())
print("c marg", d.c.describe().round(1).to_dict(), s.c.describe().round(1).to_dict())
