"""Where a twin gains or loses against the population models: CRPS per channel and per block of forecast steps.

Usage, from the repository root (heavy: one CPU slot)::

    /work/heavy .venv/bin/python benchmarks/diagnose_twin_channels.py [basic_motions|turbines] [SEED] [METHODS]
        [--bound] [--hidden] [--params=JSON]

Settings are chosen on training entities only, so by default this never touches the bench's holdout: a
``sequence`` model (seed ``SEED``) is fitted on 48 of ``bench_twins.py``'s 64 train entities and the other 16
(the split of ``diagnose_twin_horizon.py --inner``) are forecast from their first k = 10 and 25 steps, 25 steps
and 50 paths each. ``METHODS`` (comma-separated) from: ``cold`` (``bench_twins.cold_start_forecaster``: static
attributes only), ``population`` (reads the k steps), ``level05``, ``posterior03`` (tempered 0.3),
``latent30`` (the entity latent fitted alone, 30 epochs), ``ft5``, ``ft15`` (fine-tune every weight), ``ft15sel``
(15 epochs at most, chosen on the history's last 30%), ``ft15anchor1`` (a 10 x stronger pull to the population
weights), ``latent30sel``; and on the turbines ``oracle`` (the simulator continued from each unit's true state,
``bench_twins.simulator_oracle``). Prints, per k and method, the mean CRPS (train-sd units, mean over numeric
channels), its ratio to the first method by blocks of 5 steps, and CRPS per channel. With ``oracle``, also the
oracle with the population's ``maintenance`` paths in place of its own: a unit's maintenance phase is a hidden
constant that its first 100 steps show at most once, so no forecaster of the data can know it.

``--bound`` scores the bench's own fit and 10 holdout entities instead, for the oracle's decomposition only (no
setting is chosen from it). ``--hidden`` (turbines) regresses the simulator's hidden quantities on the fitted
model's entity embeddings (ridge, 8-fold CV R^2 over the 48 entities), then asks how well the latents a twin
infers from k steps predict them on the 16 inner entities (R^2 through the same regressions). ``--params=JSON``:
the ``sequence`` model's parameters (e.g. ``--params='{"drift": false}'``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_twins as B

HORIZON, PATHS, BLOCK = 25, 50, 5
SETTINGS = {
    "population": {"epochs": 0, "level": 0.0, "posterior": False, "select": False},
    "level05": {"epochs": 0, "level": 0.5, "posterior": False, "select": False},
    "posterior03": {"epochs": 0, "level": 0.0, "posterior": True, "temper": 0.3, "select": False},
    "latent30": {"epochs": 30, "level": 0.0, "fine_tune_share": 0.0, "select": False, "posterior": False},
    "latent30sel": {"epochs": 30, "level": 0.0, "fine_tune_share": 0.0, "select": True, "posterior": False},
    "ft5": {"epochs": 5, "level": 0.0, "select": False, "posterior": False},
    "ft15": {"epochs": 15, "level": 0.0, "select": False, "posterior": False},
    "ft15sel": {"epochs": 15, "level": 0.0, "select": True, "posterior": False},
    "ft15anchor1": {"epochs": 15, "level": 0.0, "select": False, "posterior": False, "anchor": 1.0},
}


def oracle_paths(holdout, ek: str, k: int, args):
    import numpy as np
    import pandas as pd

    import twinforge.simulate as sim
    from twinforge.simulate._turbines import _simulate

    fleet = sim.turbines(n_units=args.units, n_steps=args.steps, seed=args.seed)
    units = holdout[ek].unique()
    paths = []
    for p in range(PATHS):
        events = _simulate(fleet.params, branch=(k, np.random.default_rng([args.seed, k, p]))).events
        events = events[events[ek].isin(units)].reset_index(drop=True)
        step = events.groupby(ek).cumcount()
        paths.append(events[(step >= k) & (step < k + HORIZON)].assign(path=p))
    return pd.concat(paths, ignore_index=True)


def per_step(fc, actual, ek: str, tk: str, numeric: list[str], scale: dict):
    """CRPS (channels x steps), mean over entities, in units of ``scale``."""
    import numpy as np

    from twinforge.evaluate import forecast as F

    rows = []
    for entity, truth in actual.groupby(ek, sort=False):
        truth = truth.sort_values(tk)
        f = fc[fc[ek] == entity].sort_values(["path", tk])
        n = f["path"].nunique()
        rows.append(
            np.stack(
                [
                    F.crps(f[c].to_numpy(float).reshape(n, -1)[:, : len(truth)], truth[c].to_numpy(float)) / scale[c]
                    for c in numeric
                ]
            )
        )
    return np.nanmean(np.stack(rows), 0)


def hidden_recovery(model, fit_df, held_df, ek: str, tk: str, args) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    import twinforge.simulate as sim
    from twinforge.evaluate import forecast as F

    fleet = sim.turbines(n_units=args.units, n_steps=args.steps, seed=args.seed)

    def targets(units):
        hid = fleet.hidden.set_index(ek).loc[units]
        wear = fleet.states.groupby(ek)["wear"]
        return pd.DataFrame(
            {
                "log wear_rate": np.log(hid["wear_rate"].to_numpy()),
                "log vibration_gain": np.log(hid["vibration_gain"].to_numpy()),
                "thermal_gain": hid["thermal_gain"].to_numpy(),
                "failure_threshold": hid["failure_threshold"].to_numpy(),
                "mean wear": wear.mean().loc[units].to_numpy(),
                "wear at step 0": wear.first().loc[units].to_numpy(),
            },
            index=units,
        )

    ids = list(pd.unique(fit_df[ek]))  # the embedding rows follow the order of first appearance
    emb = model.net_.entity.weight.detach().cpu().numpy().astype("float64")
    known = targets(ids)
    ridge = {c: RidgeCV(alphas=np.logspace(-3, 3, 13)) for c in known}
    cells = []
    for c in known:
        y = known[c].to_numpy()
        pred = cross_val_predict(ridge[c], emb, y, cv=8)
        cells.append(f"{c} {1 - np.mean((pred - y) ** 2) / np.var(y):+.2f}")
        ridge[c].fit(emb, y)
    print("embedding of the 48 fitted entities -> hidden quantity, CV R^2: " + ", ".join(cells))
    for k in (10, 25):
        history, _, _ = F.split_history(held_df, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
        latents = {"latent30": [], "posterior03 (mean)": []}
        units = []
        for entity, rows in history.groupby(ek, sort=False).indices.items():
            h = history.iloc[rows].reset_index(drop=True)
            units.append(entity)
            for name, key in (("latent30", "latent30"), ("posterior03 (mean)", "posterior03")):
                latents[name].append(model.personalize(h, seed=0, progress=False, **SETTINGS[key]).z_)
        truth = targets(units)
        for name, zs in latents.items():
            z = np.asarray(zs)
            r2 = [1 - np.mean((ridge[c].predict(z) - truth[c]) ** 2) / np.var(truth[c]) for c in known]
            print(
                f"k={k} {name}: R^2 on the 16 inner entities: "
                + ", ".join(f"{c} {v:+.2f}" for c, v in zip(known, r2, strict=True))
            )


def main(argv: list[str]) -> None:
    import numpy as np
    import pandas as pd

    import twinforge
    from twinforge.evaluate import forecast as F

    flags = {a.split("=")[0] for a in argv if a.startswith("--")}
    params = json.loads(next((a.split("=", 1)[1] for a in argv if a.startswith("--params=")), "{}"))
    argv = [a for a in argv if not a.startswith("--")]
    name = argv[0] if argv else "turbines"
    seed = int(argv[1]) if len(argv) > 1 else 0
    methods = argv[2].split(",") if len(argv) > 2 else ["cold", "population", "latent30"]
    args = B.parse_args(["--datasets-only", name])
    df, ek, tk, static, _ = B.load_dataset(name, args)
    train, holdout = B.split_entities(df, ek, 0)
    if "--bound" in flags:
        entities = sorted(holdout[ek].unique())
        keep = np.random.default_rng(0).choice(len(entities), args.twin_entities, replace=False)
        fit_df, scored = train, holdout[holdout[ek].isin([entities[i] for i in sorted(keep)])]
    else:  # training entities only: the bench's holdout stays unseen
        entities = np.array(sorted(train[ek].unique()))
        held = set(np.random.default_rng(123).choice(entities, 16, replace=False).tolist())
        fit_df, scored = train[~train[ek].isin(held)], train[train[ek].isin(held)]
    channels = [c for c in scored.columns if c not in (ek, tk, *static)]
    numeric = [c for c in channels if fit_df[c].dtype.kind in "fiu"]
    scale = {c: float(np.nanstd(fit_df[c].to_numpy(dtype="float64"))) for c in numeric}
    model = twinforge.create("sequence", **{"seed": seed, "progress": False, **params})
    model.fit(fit_df, entity_key=ek, time_key=tk, static=static)
    if "--hidden" in flags:
        hidden_recovery(model, fit_df, scored, ek, tk, args)
        return
    cold = B.cold_start_forecaster(model, ek, tk, static)
    for k in (10, 25):
        history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
        forecasts = {}
        for method in methods:
            if method == "oracle":
                forecasts[method] = oracle_paths(scored, ek, k, args)
                continue
            fcs = []
            for _, rows in history.groupby(ek, sort=False).indices.items():
                h = history.iloc[rows].reset_index(drop=True)
                if method == "cold":
                    fcs.append(cold(h, HORIZON, PATHS, 0))
                else:
                    fcs.append(
                        model.personalize(h, seed=0, progress=False, **SETTINGS[method]).forecast(
                            HORIZON, PATHS, seed=0
                        )
                    )
            forecasts[method] = pd.concat(fcs, ignore_index=True)
        if "oracle" in forecasts and "population" in forecasts:
            mixed = forecasts["oracle"].sort_values([ek, "path", tk]).reset_index(drop=True)
            pop = forecasts["population"].sort_values([ek, "path", tk]).reset_index(drop=True)
            mixed["maintenance"] = pop["maintenance"].to_numpy()
            forecasts["oracle, population's maintenance"] = mixed
        grids = {m: per_step(fc, actual, ek, tk, numeric, scale) for m, fc in forecasts.items()}
        first = next(iter(grids.values()))
        blocks = range(0, HORIZON, BLOCK)
        for m, g in grids.items():
            ratio = " ".join(f"{g[:, a : a + BLOCK].mean() / first[:, a : a + BLOCK].mean():.2f}" for a in blocks)
            print(
                f"k={k} {m:<32} CRPS {g.mean():.4f} (x{g.mean() / first.mean():.3f} {methods[0]}); by block x {ratio}"
            )
        for m, g in grids.items():
            print(f"k={k} {m:<32} " + ", ".join(f"{c} {g[i].mean():.3f}" for i, c in enumerate(numeric)))


if __name__ == "__main__":
    main(sys.argv[1:])
