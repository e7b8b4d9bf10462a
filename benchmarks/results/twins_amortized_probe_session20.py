"""Session 20's experiment record (needs twins_amortized_prefix_session20.patch applied; the z0/zall modes use
its ``amortized`` model). Inner-split probe (training entities only): fit on 48 of the bench's 64 train entities,
forecast the other 16 from k steps (population view / encoder latent) against the cold start, CRPS per 5-step
block."""

import json
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import bench_twins as B
import numpy as np

import twinforge
from twinforge.evaluate import forecast as F

name = sys.argv[1]
params = json.loads(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
modes = sys.argv[4].split(",") if len(sys.argv) > 4 else ["population"]
args = B.parse_args(["--datasets-only", name])
df, ek, tk, static, _ = B.load_dataset(name, args)
train, _holdout = B.split_entities(df, ek, 0)  # the bench's holdout is never touched
ents = np.array(sorted(train[ek].unique()))
held = set(np.random.default_rng(123).choice(ents, 16, replace=False).tolist())
inner_train = train[~train[ek].isin(held)].reset_index(drop=True)
inner_val = train[train[ek].isin(held)].reset_index(drop=True)
channels = [c for c in inner_val.columns if c not in (ek, tk, *static) and inner_val[c].dtype.kind in "fiu"]
scale = {c: float(np.nanstd(inner_train[c].to_numpy(dtype="float64"))) for c in channels}
cpu = time.process_time()
model = twinforge.create("sequence", seed=seed, progress=False, **params)
model.fit(inner_train, entity_key=ek, time_key=tk, static=static)
cpu = time.process_time() - cpu
print(f"{name} {json.dumps(params)} seed {seed}: fit CPU {cpu:.1f}s epochs {model.train_info_['epochs']}", flush=True)
cold = B.cold_start_forecaster(model, ek, tk, static)
if params.get("amortized"):
    from twinforge.sequences._data import parse_time

    ys, cs = [], []
    for _, g in inner_val.groupby(ek):
        g = g.sort_values(tk)
        ys.append(model.encoding_.encode(g, parse_time(g[tk], tk, None)[0]))
        cs.append(model.static_encoding_.encode(g.iloc[:1]))
    cs = np.vstack(cs)
    m0, v0 = model._prefix_latents([y[:0] for y in ys], cs)
    for kk in (10, 25, 100):
        mk, vk = model._prefix_latents([y[:kk] for y in ys], cs)
        moved, narrowed = np.mean(np.abs(mk - m0) / np.sqrt(v0)), np.mean(np.sqrt(vk / v0))
        print(f"latent k={kk}: |mu_k - mu_0| / sd_0 = {moved:.3f}, sd_k/sd_0 = {narrowed:.3f}", flush=True)


def method(mode):
    if mode == "population":
        return lambda h, H, P, s: model.forecast(h, H, P, seed=s)
    if mode == "encode":
        return lambda h, H, P, s: model.personalize(
            h, epochs=0, level=0.0, encode=True, posterior=False, seed=s
        ).forecast(H, P, seed=s)
    if mode in ("z0", "zall"):

        def run(h, H, P, s):
            tw = model.personalize(h, epochs=0, level=0.0, posterior=False, seed=s)
            ent = h[ek].iloc[0]
            full = inner_val[inner_val[ek] == ent].sort_values(tk).iloc[: len(h) + H] if mode == "zall" else h.iloc[:0]
            from twinforge.sequences._data import parse_time

            y = model.encoding_.encode(full, parse_time(full[tk], tk, None)[0]) if len(full) else np.zeros((0, 1))
            cond = model.static_encoding_.encode(tw.static_row_)
            mu, var = model._prefix_latents([y], cond)
            tw.z_, tw.z_sd_ = mu[0], np.sqrt(var[0])
            return tw.forecast(H, P, seed=s)

        return run
    raise SystemExit(mode)


for k in (10, 25):
    history, actual, _ = F.split_history(inner_val, entity_key=ek, time_key=tk, k=k, horizon=25)
    scores = {m: [] for m in [*modes, "cold"]}
    for entity, rows in history.groupby(ek, sort=False).indices.items():
        h = history.iloc[rows].reset_index(drop=True)
        truth = actual[actual[ek] == entity].sort_values(tk)
        fcs = {m: method(m)(h, 25, 50, 0) for m in modes}
        fcs["cold"] = cold(h, 25, 50, 0)
        for m, fc in fcs.items():
            per = [
                F.crps(fc.pivot(index="path", columns=tk, values=c).to_numpy(), truth[c].to_numpy()) / scale[c]
                for c in channels
            ]
            scores[m].append(np.nanmean(per, 0))
    means = {m: np.nanmean(np.vstack(v), 0) for m, v in scores.items()}
    for m, v in means.items():
        blocks = ", ".join(f"{v[a : a + 5].mean():.3f}" for a in range(0, 25, 5))
        r = v.mean() / means["cold"].mean()
        print(f"k={k} {m:<10} mean {v.mean():.4f} (x{r:.3f} cold) blocks {blocks}", flush=True)
