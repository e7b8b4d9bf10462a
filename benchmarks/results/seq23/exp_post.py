"""Population forecast vs history-statistic post-processing, inner entities."""

import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import *

name = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
m = get_model(name, seed)
lab = static[0]
for k in (10, 25):
    history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
    methods = {}
    for entity, rows in history.groupby(ek, sort=False).indices.items():
        h = history.iloc[rows].reset_index(drop=True)
        pop = m.forecast(h, HORIZON, PATHS, seed=0)
        methods.setdefault("population", {})[entity] = pop
        H = h[numeric].to_numpy(float)
        hm, hs = H.mean(0), H.std(0)
        for w in (0.5, 1.0):
            f = pop.copy()
            for j, c in enumerate(numeric):
                f[c] = f[c] + w * (hm[j] - f[c].mean())
            methods.setdefault(f"shift hist {w}", {})[entity] = f
        f = pop.copy()
        for j, c in enumerate(numeric):
            sd = f[c].std()
            f[c] = (f[c] - f[c].mean()) * (0.5 + 0.5 * hs[j] / sd) + f[c].mean()
        methods.setdefault("scale hist 0.5", {})[entity] = f
        # seasonal analog: period from the history's mean acf
        n = len(H)
        Hc = (H - hm) / np.where(hs > 0, hs, 1)
        lags = list(range(2, max(3, n // 2)))
        acf = np.array(
            [np.nanmean([np.corrcoef(Hc[:-L, j], Hc[L:, j])[0, 1] for j in range(H.shape[1])]) for L in lags]
        )
        rng = np.random.default_rng(0)
        wts = np.clip(np.nan_to_num(acf), 0, None) ** 2
        if wts.sum() == 0:
            wts = np.ones_like(wts)
        wts = wts / wts.sum()
        P = int(lags[int(np.argmax(acf))])
        paths = []
        for p in range(PATHS):
            L = lags[rng.choice(len(lags), p=wts)]
            out = np.empty((HORIZON, H.shape[1]))
            ext = list(H)
            for s in range(HORIZON):
                ext.append(ext[len(ext) - L])
            out = np.array(ext[n:])
            resid = np.nanstd(H[L:] - H[:-L], 0) / np.sqrt(2)
            out = out + rng.standard_normal(out.shape) * resid * 0.5
            paths.append(
                pd.DataFrame(
                    {"path": p, tk: pop[pop.path == 0][tk].to_numpy(), **{c: out[:, j] for j, c in enumerate(numeric)}}
                )
            )
        seas = pd.concat(paths, ignore_index=True)
        methods.setdefault("seasonal", {})[entity] = seas
        mix = pd.concat([pop[pop.path < PATHS // 2], seas[seas.path >= PATHS // 2]], ignore_index=True)
        methods.setdefault("mix pop/seasonal", {})[entity] = mix
        # history resampling: iid draws of history rows (the entity's marginal)
        idx = rng.integers(0, n, size=(PATHS, HORIZON))
        boot = pd.DataFrame(
            {
                "path": np.repeat(np.arange(PATHS), HORIZON),
                tk: np.tile(pop[pop.path == 0][tk].to_numpy(), PATHS),
                **{c: H[idx.reshape(-1), j] for j, c in enumerate(numeric)},
            }
        )
        methods.setdefault("history marginal", {})[entity] = boot
        mix2 = pd.concat([pop[pop.path < PATHS // 2], boot[boot.path >= PATHS // 2]], ignore_index=True)
        methods.setdefault("mix pop/marginal", {})[entity] = mix2
    base = None
    labels = scored.groupby(ek)[lab].first() if name == "basic_motions" else None
    for mname, fcs in methods.items():
        g = score(fcs, actual, ek, tk, numeric, scale)
        base = g if base is None else base
        blocks = " ".join(f"{g[:, a : a + 5].mean():.3f}" for a in range(0, HORIZON, 5))
        print(f"k={k} {mname:<20} {g.mean():.4f} x{g.mean() / base.mean():.3f} blocks {blocks}", flush=True)
    if labels is not None:
        for L in sorted(labels.unique()):
            ents = [e for e in labels.index if labels[e] == L]
            act = actual[actual[ek].isin(ents)]
            cells = []
            for mname in ("population", "seasonal", "history marginal", "mix pop/seasonal"):
                cells.append(f"{mname} {score(methods[mname], act, ek, tk, numeric, scale).mean():.3f}")
            print(f"  k={k} {L} ({len(ents)}): " + ", ".join(cells))
