"""Sampling temperature on the numeric mixture sd (monkeypatched _draw), population forecasts, inner entities."""

import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import *

import twinforge.sequences.model as M

TAU = {"v": 1.0}
_orig = M._draw


def _draw(b, par, k, rng, event, left):
    if b["kind"] == "num" and TAU["v"] != 1.0:
        par = par.copy()
        off = 1 if b.get("missing", False) else 0
        par[:, off + 2 * k : off + 3 * k] += np.log(TAU["v"])
    return _orig(b, par, k, rng, event, left)


M._draw = _draw

name = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
taus = [float(t) for t in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0.5, 0.7, 0.85, 1.0, 1.2]
fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
m = get_model(name, seed)
for k in (10, 25):
    history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
    hs = {e: history.iloc[r].reset_index(drop=True) for e, r in history.groupby(ek, sort=False).indices.items()}
    for tau in taus:
        TAU["v"] = tau
        fcs = {e: m.forecast(h, HORIZON, PATHS, seed=0) for e, h in hs.items()}
        g = score(fcs, actual, ek, tk, numeric, scale)
        # spread/error diagnostics
        sp, er = [], []
        for e, truth in actual.groupby(ek):
            truth = truth.sort_values(tk)
            f = fcs[e].sort_values(["path", tk])
            for c in numeric:
                a = f[c].to_numpy(float).reshape(PATHS, -1)[:, : len(truth)]
                sp.append(a.std(0) / scale[c])
                er.append(np.abs(a.mean(0) - truth[c].to_numpy(float)) / scale[c])
        blocks = " ".join(f"{g[:, a : a + 5].mean():.3f}" for a in range(0, HORIZON, 5))
        print(
            f"k={k} tau {tau}: CRPS {g.mean():.4f} blocks {blocks}; spread {np.nanmean(sp):.3f} |err of mean| {np.nanmean(er):.3f}",
            flush=True,
        )
