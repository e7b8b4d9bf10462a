"""Where along the horizon reading an entity's history helps: CRPS per forecast step, population against cold start.

Usage, from the repository root (heavy: one CPU slot)::

    /work/heavy .venv/bin/python benchmarks/diagnose_twin_horizon.py [basic_motions|turbines] [SEED] [PARAMS] [--inner]

The same entity split and the same 10 holdout entities as ``bench_twins.py`` (its seed 0), a ``sequence`` model
(default, or the JSON ``PARAMS``) fitted with seed ``SEED`` on the train entities, then for k = 10 and 25: the
population model's forecast from the k steps (``model.forecast``) and the cold-start population's
(``bench_twins.cold_start_forecaster``: static attributes only), 25 steps and 50 paths each, scored per step (CRPS
in units of the train fleet's standard deviation, mean over numeric channels and entities) and printed by blocks
of 5 steps with their ratio.

``--inner`` never touches the bench's holdout, for choosing settings: the model is fitted on 48 of the 64 train
entities and scored on the other 16 (a seeded split of the training entities).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_twins as B

HORIZON, PATHS, BLOCK = 25, 50, 5


def main(argv: list[str]) -> None:
    import numpy as np

    import twinforge
    from twinforge.evaluate import forecast as F

    inner = "--inner" in argv
    argv = [a for a in argv if a != "--inner"]
    name = argv[0] if argv else "basic_motions"
    seed = int(argv[1]) if len(argv) > 1 else 0
    params = json.loads(argv[2]) if len(argv) > 2 else {}
    args = B.parse_args(["--datasets-only", name])
    df, ek, tk, static, _ = B.load_dataset(name, args)
    train, holdout = B.split_entities(df, ek, 0)
    if inner:  # settings are chosen on training entities only: the bench's holdout stays unseen
        entities = np.array(sorted(train[ek].unique()))
        held = set(np.random.default_rng(123).choice(entities, 16, replace=False).tolist())
        train, holdout = train[~train[ek].isin(held)], train[train[ek].isin(held)]
    else:
        entities = sorted(holdout[ek].unique())
        keep = np.random.default_rng(0).choice(len(entities), args.twin_entities, replace=False)
        holdout = holdout[holdout[ek].isin([entities[i] for i in sorted(keep)])]
    channels = [c for c in holdout.columns if c not in (ek, tk, *static) and holdout[c].dtype.kind in "fiu"]
    scale = {c: float(np.nanstd(train[c].to_numpy(dtype="float64"))) for c in channels}
    model = twinforge.create("sequence", seed=seed, progress=False, **params)
    model.fit(train, entity_key=ek, time_key=tk, static=static)
    cold = B.cold_start_forecaster(model, ek, tk, static)
    for k in (10, 25):
        history, actual, _ = F.split_history(holdout, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
        scores: dict[str, list[np.ndarray]] = {"population": [], "cold start": []}
        for entity, rows in history.groupby(ek, sort=False).indices.items():
            h = history.iloc[rows].reset_index(drop=True)
            truth = actual[actual[ek] == entity].sort_values(tk)
            fcs = {"population": model.forecast(h, HORIZON, PATHS, seed=0), "cold start": cold(h, HORIZON, PATHS, 0)}
            for method, fc in fcs.items():
                per = [F.crps(fc.pivot(index="path", columns=tk, values=c).to_numpy(), truth[c].to_numpy()) / scale[c]
                       for c in channels]  # fmt: skip
                scores[method].append(np.nanmean(per, 0))
        means = {m: np.nanmean(np.vstack(v), 0) for m, v in scores.items()}
        blocks = range(0, HORIZON, BLOCK)
        for method, m in means.items():
            cells = ", ".join(f"{m[a : a + BLOCK].mean():.3f}" for a in blocks)
            print(f"k={k} {method:<10} mean {m.mean():.3f}; steps 1-{BLOCK}, ...: {cells}")
        ratio = ", ".join(
            f"{means['population'][a : a + BLOCK].mean() / means['cold start'][a : a + BLOCK].mean():.2f}"
            for a in blocks
        )
        print(f"k={k} population / cold start by block: {ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
