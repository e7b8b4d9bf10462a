import time, sys
import numpy as np, pandas as pd, twinforge
sys.path.insert(0, "/work/wt-ar")
from tests.test_autoregressive import _clock_table

def rel(out):
    m = 60 * (out["dep"] // 100) + out["dep"] % 100
    s = 60 * (out["sched"] // 100) + out["sched"] % 100
    k = out["delay"].notna() & out["dep"].notna()
    sched_ok = (out["sched"] == 100 * out["hour"] + out["minute"]).mean()
    dep_ok = ((m - s - out["delay"])[k] % 1440 == 0).mean()
    tot_ok = ((out["total"] - out["a"] - out["b"]).abs() <= 0.011).mean()
    return f"sched_ok={sched_ok:.3f} dep_ok={dep_ok:.3f} tot_ok={tot_ok:.3f}"

data = _clock_table(2000, 3)
t = time.time()
f = twinforge.create("auto", seed=0, epochs=3, progress=False).fit(data)
print("fit", time.time() - t)
print({c["column"]: c["derive"]["reference"] for c in f.columns_ if "derive" in c})
out = f.sample(2000, seed=0)
print("uncond", rel(out), "dep form", (out.dep.dropna() % 100 < 60).mean(), out.dep.max(), out.sched.max())
print("marg dep", data.dep.describe().round(1).to_dict(), out.dep.describe().round(1).to_dict())
for cond in [{"sched": 745}, {"sched": [745, 1230]}, {"sched": (1200, 1300)}, {"dep": (1200, 1300)}, {"total": (100, 200)}, {"hour": 7}, {"delay": (0, 10)}, {"a": (10, 20)}]:
    try:
        o = f.sample(300, seed=1, conditions=cond)
        c = list(cond)[0]; v = cond[c]
        if isinstance(v, tuple): ok = o[c].between(*v).mean()
        elif isinstance(v, list): ok = o[c].isin(v).mean()
        else: ok = (o[c] == v).mean()
        print("cond", cond, "honoured", ok, rel(o))
    except Exception as e:
        print("cond", cond, "ERR", type(e).__name__, e)
sd = pd.DataFrame({"sched": np.full(200, 745.0)})
o = f.sample(200, seed=1, seed_data=sd); print("seed sched", (o.sched == 745).mean(), rel(o))
sd = pd.DataFrame({"a": np.full(200, 10.0), "b": np.full(200, 5.0)})
o = f.sample(200, seed=1, seed_data=sd); print("seed a,b", (o.total == 15).mean(), rel(o))
sd = pd.DataFrame({"total": np.full(200, 15.0)})
o = f.sample(200, seed=1, seed_data=sd); print("seed total", (o.total == 15).mean(), rel(o))
# impute
miss = data.head(300).copy()
miss.loc[:99, "dep"] = np.nan
miss.loc[100:199, "delay"] = np.nan
miss.loc[200:299, "total"] = np.nan
try:
    im = f.impute(miss, seed=0)
    print("impute", rel(im.iloc[:100]), "|delay missing rows", rel(im.iloc[100:200]), "|total", rel(im.iloc[200:]))
    print("impute dep na left", im.dep.iloc[:100].isna().sum(), "delay na", im.delay.iloc[100:200].isna().sum())
except Exception as e:
    print("impute ERR", type(e).__name__, e)
try:
    o = f.sample(900, seed=2, rebalance={"g": {"x": 0.8, "y": 0.1, "z": 0.1}})
    print("rebalance", o.g.value_counts(normalize=True).round(2).to_dict(), rel(o))
except Exception as e:
    print("rebalance ERR", type(e).__name__, e)
for temp in (0.5, 1.5):
    o = f.sample(500, seed=3, temperature=temp); print("temp", temp, rel(o))
pd.testing.assert_frame_equal(f.sample(200, seed=5), f.sample(200, seed=5)); print("determinism ok")
f.save("/tmp/qa20/m1_new"); f2 = twinforge.load("/tmp/qa20/m1")
pd.testing.assert_frame_equal(f2.sample(200, seed=5), f.sample(200, seed=5)); print("save/load ok")
pd.testing.assert_frame_equal(f2.sample(200, seed=5, conditions={"g": "x"}), f.sample(200, seed=5, conditions={"g": "x"})); print("save/load cond ok")
