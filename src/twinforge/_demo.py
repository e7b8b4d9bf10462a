"""The side-by-side comparison printed by ``twinforge demo``: a few marginals and one correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.table import Table

from twinforge.metadata import Metadata


def compare(real: pd.DataFrame, fake: pd.DataFrame, metadata: Metadata, top: int = 3) -> list[Table]:
    """Rich tables comparing ``real`` and ``fake``: numeric summaries, category shares, strongest correlation."""
    numeric = [n for n, s in metadata.columns.items() if s.kind in ("continuous", "integer") and real[n].nunique() > 2]
    categorical = [n for n, s in metadata.columns.items() if s.kind in ("categorical", "boolean")]
    tables = []

    nums = Table("column", "statistic", "real", "synthetic", title="numeric columns")
    for col in numeric[:top]:
        r, f = real[col].astype("float64"), fake[col].astype("float64")
        for stat, fn in (("mean", np.nanmean), ("std", np.nanstd), ("median", np.nanmedian)):
            nums.add_row(col, stat, f"{fn(r):,.2f}", f"{fn(f):,.2f}")
        nums.add_row(col, "missing", f"{r.isna().mean():.2%}", f"{f.isna().mean():.2%}", end_section=True)
    tables.append(nums)

    cats = Table("column", "level", "real share", "synthetic share", title="categorical columns")
    for col in categorical[:top]:
        r = real[col].value_counts(normalize=True, dropna=False)
        f = fake[col].value_counts(normalize=True, dropna=False)
        levels = list(r.index[:4])
        for i, level in enumerate(levels):
            cats.add_row(
                col, str(level), f"{r[level]:.1%}", f"{f.get(level, 0.0):.1%}", end_section=i == len(levels) - 1
            )
    tables.append(cats)

    if len(numeric) >= 2:
        corr = real[numeric].astype("float64").corr().abs().to_numpy()
        np.fill_diagonal(corr, 0)
        i, j = np.unravel_index(np.nanargmax(corr), corr.shape)
        a, b = numeric[i], numeric[j]
        pair = Table("pair", "real correlation", "synthetic correlation", title="strongest correlation")
        pair.add_row(
            f"{a} ~ {b}",
            f"{real[a].astype('float64').corr(real[b].astype('float64')):.3f}",
            f"{fake[a].astype('float64').corr(fake[b].astype('float64')):.3f}",
        )
        tables.append(pair)
    return tables


# ------------------------------------------------------------------------------------------ digital twins
def twins(
    *,
    units: int = 60,
    steps: int = 120,
    seed: int = 0,
    max_minutes: float | None = 1.0,
    k: int = 25,
    horizon: int = 25,
    paths: int = 100,
    progress: bool = True,
    model_params: dict | None = None,
) -> tuple[list[Table], dict]:
    """The twin demo: simulate a turbine fleet, fit the sequence model, sample, personalise one unit, forecast.

    Five units are held out. The population model learns the others; a new fleet is sampled and scored with the
    temporal metrics; the held-out unit that wears fastest (its hidden ``wear_rate``) is personalised on its
    first ``k`` steps (as tuned on training units for that length), and the forecasts of the next ``horizon``
    steps by its twin, by the population model and by a per-entity AR(1) are scored against what it really did.
    Returns the rich tables and a summary dict.
    """
    import twinforge
    import twinforge.simulate as sim
    from twinforge.errors import ParameterError
    from twinforge.evaluate import forecast as F
    from twinforge.evaluate import temporal

    if units < 8:
        raise ParameterError(f"--units must be at least 8 for the twin demo (5 are held out), got {units}")
    if steps < k + 2:
        raise ParameterError(
            f"--steps must be at least {k + 2} for the twin demo (it personalises on {k}), got {steps}"
        )
    fleet = sim.turbines(n_units=units, n_steps=steps, seed=seed)
    ek, tk = fleet.entity_key, fleet.time_key
    static = [c for c in fleet.static.columns if c != ek]
    events = fleet.events.merge(fleet.static, on=ek)
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(fleet.static[ek].to_numpy(), 5, replace=False).tolist())
    train, holdout = events[~events[ek].isin(held)], events[events[ek].isin(held)]
    params = {"progress": progress, **(model_params or {})}
    if max_minutes is not None:
        params["max_minutes"] = max_minutes
    model = twinforge.create("sequence", seed=seed, **params).fit(train, entity_key=ek, time_key=tk, static=static)
    synthetic = model.sample(entities=train[ek].nunique(), seed=seed)
    scores = temporal.temporal_fidelity(train, synthetic, ek, tk, holdout=holdout, seed=seed)
    real_ceiling = temporal.temporal_fidelity(train, holdout, ek, tk, seed=seed)

    hidden = fleet.hidden.set_index(ek)
    unit = str(hidden.loc[held, "wear_rate"].idxmax())
    rows = holdout[holdout[ek] == unit].sort_values(tk)
    history, actual = rows.iloc[:k], rows.iloc[k : k + horizon]
    channels = [c for c in fleet.channels if c in synthetic.columns]
    numeric = [c for c in channels if pd.api.types.is_numeric_dtype(train[c])]
    scale = {c: float(np.nanstd(train[c].to_numpy(dtype="float64"))) for c in numeric}
    # how a twin adapts to k steps is chosen on training units held out from an inner fit (tune-twins)
    model.tune_personalization(train, ks=(k,), horizon=min(horizon, steps - k), seed=seed, progress=progress)
    twin = model.personalize(history, seed=seed, progress=progress)
    forecasts = {
        "twin": twin.forecast(len(actual), paths, seed=seed),
        "population": model.forecast(history, len(actual), paths, seed=seed),
        "per-unit AR(1)": F.ar1_forecaster(entity_key=ek, time_key=tk, channels=channels)(
            history, len(actual), paths, seed
        ),
    }
    fc_scores = {
        name: F.forecast_scores(fc, actual, entity_key=ek, time_key=tk, channels=channels, scale=scale)
        for name, fc in forecasts.items()
    }
    plain_share = float(forecasts["twin"].groupby("path")["failure"].max().mean())
    event_share = None
    if train["failure"].max() > 0:  # a model cannot generate an event it never saw
        failing = twin.forecast(horizon, paths, seed=seed, event={"column": "failure", "value": 1, "within": horizon})
        event_share = float(failing.groupby("path")["failure"].max().mean())

    head = Table("metric", "synthetic fleet", "real holdout", "ideal", title="population model: temporal fidelity")
    for key, label, ideal in (
        ("autocorrelation_error", "autocorrelation error", "0"),
        ("cross_correlation_error", "cross-correlation error", "0"),
        ("discriminative_auc", "discriminative AUC", "0.5"),
        ("sequence_length", "sequence length (1 - KS)", "1"),
        ("static_column_shapes", "static attributes", "1"),
    ):
        head.add_row(label, _num(scores[key]), _num(real_ceiling[key]), ideal)
    fc_table = Table(
        "forecaster",
        "CRPS",
        "MAE of median path",
        "vs population",
        title=f"forecast of {unit}: next {len(actual)} steps (twin: {model.twin_policy_['choices'][0]['name']})",
    )
    base = fc_scores["population"]["crps_scaled"]
    for name, sc in fc_scores.items():
        ratio = f"x{sc['crps_scaled'] / base:.2f}" if base else "n/a"
        fc_table.add_row(name, _num(sc["crps_scaled"]), _num(sc["mae_scaled"]), ratio)
    event_table = Table("scenario", "paths with a failure", title=f"rare failures on demand ({horizon} steps)")
    event_table.add_row("twin, as learned", f"{plain_share:.0%}")
    event_table.add_row(
        'twin, event={"column": "failure", "value": 1}',
        "no failure in the training fleet: simulate more --units or --steps"
        if event_share is None
        else f"{event_share:.0%}",
    )
    summary = {
        "units": units,
        "steps": steps,
        "held_out": held,
        "unit": unit,
        "wear_rate": float(hidden.loc[unit, "wear_rate"]),
        "fleet_median_wear_rate": float(hidden["wear_rate"].median()),
        "fit_seconds": model.fit_info_["seconds"],
        "failures": int(events["failure"].sum()),
        "temporal": {
            k2: scores[k2]
            for k2 in ("autocorrelation_error", "cross_correlation_error", "discriminative_auc", "sequence_length")
        },
        "forecast": {n: {"crps": s["crps_scaled"], "mae": s["mae_scaled"]} for n, s in fc_scores.items()},
        "twin_choice": model.twin_policy_["choices"][0]["name"],
        "failure_share": {"plain": plain_share, "event": event_share},
        "synthetic": synthetic,
    }
    return [head, fc_table, event_table], summary


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
