"""Shared set-up for session-23 experiments: the inner split of diagnose_twin_channels (never the bench holdout)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import bench_twins as B
import numpy as np

import twinforge
from twinforge.evaluate import forecast as F

HORIZON, PATHS = 25, 50


def inner(name):
    args = B.parse_args(["--datasets-only", name])
    df, ek, tk, static, _ = B.load_dataset(name, args)
    train, _ = B.split_entities(df, ek, 0)
    entities = np.array(sorted(train[ek].unique()))
    held = set(np.random.default_rng(123).choice(entities, 16, replace=False).tolist())
    fit_df, scored = train[~train[ek].isin(held)], train[train[ek].isin(held)]
    numeric = [c for c in scored.columns if c not in (ek, tk, *static) and fit_df[c].dtype.kind in "fiu"]
    scale = {c: float(np.nanstd(fit_df[c].to_numpy(dtype="float64"))) for c in numeric}
    return fit_df.reset_index(drop=True), scored.reset_index(drop=True), ek, tk, static, numeric, scale, args


def model_path(name, seed, tag=""):
    return Path(f"/tmp/seq23/models/{name}_{seed}{tag}")


def get_model(name, seed=0, params=None, tag=""):
    fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
    p = model_path(name, seed, tag)
    if p.exists():
        return twinforge.load(p)
    m = twinforge.create("sequence", seed=seed, progress=False, **(params or {}))
    m.fit(fit_df, entity_key=ek, time_key=tk, static=static)
    m.save(p)
    return m


def score(fc_by_entity, actual, ek, tk, numeric, scale):
    """CRPS grid (channels x steps) mean over entities; fc_by_entity: {entity: DataFrame with path, tk, channels}."""
    rows = []
    for entity, truth in actual.groupby(ek, sort=False):
        truth = truth.sort_values(tk)
        f = fc_by_entity[entity].sort_values(["path", tk])
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
