"""Prototype (data level, no model change): each numeric column with a strong linear partner (|r| >= R) is
replaced by its residual on that partner before tvae fits, and rebuilt after sampling.
argv: side_dir out_dir name R"""
import json, os, sys, time
import numpy as np, pandas as pd, torch
import twinforge
torch.set_num_threads(1)
side, out, name, R = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
RMAX = float(sys.argv[5]) if len(sys.argv) > 5 else 0.9999
os.makedirs(out, exist_ok=True)
train = pd.read_csv(f"{side}/train.csv")
inner = pd.Series(range(len(train))).sample(frac=1.0, random_state=1).to_numpy()
k = round(len(train) * 0.2)
fit_df, scored = train.iloc[inner[k:]].reset_index(drop=True), train.iloc[inner[:k]].reset_index(drop=True)
fit_df.to_csv(f"{out}/fit.csv", index=False); scored.to_csv(f"{out}/scored.csv", index=False)
num = [c for c in fit_df.columns if pd.api.types.is_numeric_dtype(fit_df[c]) and fit_df[c].nunique() > 32]
corr = fit_df[num].corr()
pairs = sorted(((abs(corr.loc[a, b]), a, b) for i, a in enumerate(num) for b in num[i + 1:] if abs(corr.loc[a, b]) >= R), reverse=True)
specs, used = [], set()
for r, x, y in pairs:  # y (later in the table) from x
    if y in used or x in used or r > RMAX:
        continue
    both = fit_df[[x, y]].dropna()
    b, a = np.polyfit(both[x], both[y], 1)
    specs.append({"x": x, "y": y, "a": float(a), "b": float(b), "xmean": float(fit_df[x].mean()), "r": float(r)})
    used |= {x, y}
print(name, "pairs", [(s["x"], s["y"], round(s["r"], 3)) for s in specs], flush=True)
t = fit_df.copy()
for s in specs:
    t[s["y"]] = t[s["y"]] - (s["a"] + s["b"] * t[s["x"]].fillna(s["xmean"]))
md = twinforge.Metadata.detect(t)
c0 = time.process_time()
m = twinforge.create("tvae", seed=0, progress=False).fit(t, md)
print(name, "fit cpu", round(time.process_time() - c0, 1), {k: v for k, v in m.training_.items() if k != "history"}, flush=True)
for seed in (0, 1, 2):
    o = m.sample(len(fit_df), seed=seed)
    for s in reversed(specs):
        o[s["y"]] = o[s["y"]] + s["a"] + s["b"] * o[s["x"]].fillna(s["xmean"])
        if pd.api.types.is_integer_dtype(fit_df[s["y"]]):
            o[s["y"]] = o[s["y"]].round().astype(fit_df[s["y"]].dtype)
        else:
            o[s["y"]] = o[s["y"]].round(6)
    o.to_parquet(f"{out}/{name}_s{seed}.parquet")
