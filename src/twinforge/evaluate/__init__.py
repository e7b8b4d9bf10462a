"""Evaluation of synthetic data: fidelity, utility and privacy, as a JSON summary and an HTML report.

:func:`evaluate` runs every metric of :mod:`~twinforge.evaluate.fidelity`, :mod:`~twinforge.evaluate.utility` and
:mod:`~twinforge.evaluate.privacy` (each module's docstring defines its metrics, ideal values and references) and
returns an :class:`EvaluationReport`. The metric modules are pure functions of (real, synthetic, metadata) and
can also be called one by one: ``from twinforge.evaluate import fidelity``.

Per-entity time series (a long table with an entity key and a time index, given as ``entity_key``/``time_key`` or
in the metadata) also get the metrics of :mod:`~twinforge.evaluate.temporal`: autocorrelation and
cross-correlation errors, a discriminative and a predictive score, sequence-length and static-attribute fidelity.
:mod:`~twinforge.evaluate.forecast` scores probabilistic forecasts (CRPS over sample paths, MAE of the median
path) and runs the digital-twin benchmark (personalised twin vs population model vs a per-entity model).

Large tables are subsampled, with a seed, where a metric's cost grows faster than the number of rows; the caps
are in :data:`CAPS` and the report lists what was subsampled. Column shapes, missing rates, Wasserstein
distances and exact copies always use every row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import numpy as np

from twinforge.errors import ParameterError
from twinforge.evaluate import fidelity, forecast, privacy, temporal, utility
from twinforge.evaluate._data import Prepared, prepare, read_input, seeds, subsample
from twinforge.evaluate.report import EvaluationReport

__all__ = ["CAPS", "EvaluationReport", "evaluate", "fidelity", "forecast", "privacy", "temporal", "utility"]

#: Rows used by the metrics whose cost grows faster than the number of rows (per table unless said otherwise).
CAPS: dict[str, int] = {
    "pair_rows": 50_000,  # column pair trends, mutual information, correlation matrices (as SDMetrics does)
    "detection_rows": 10_000,  # detection classifier, per side
    "alpha_beta_rows": 5_000,  # alpha-precision / beta-recall / authenticity
    "distance_rows": 20_000,  # distance to closest record and NNDR
    "attack_rows": 5_000,  # members and non-members of the membership attacks; attribute-inference test rows
    "train_rows": 100_000,  # rows a utility model trains on, and holdout rows it is tested on
    "entities": 5_000,  # entities per side of the discriminative (real vs synthetic sequences) classifier
    "next_step_rows": 20_000,  # rows the next-step models of the predictive score train and test on
}
PARTS = ("fidelity", "utility", "privacy", "temporal")


def evaluate(
    real: Any,
    synthetic: Any,
    holdout: Any = None,
    metadata: Any = None,
    target: str | None = None,
    sensitive: str | Iterable[str] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    parts: Iterable[str] | None = None,
    caps: dict[str, int] | None = None,
    entity_key: str | None = None,
    time_key: str | None = None,
    real_static: Any = None,
    synthetic_static: Any = None,
    lags: int = temporal.LAGS,
    privacy_budget: Any = None,
) -> EvaluationReport:
    """Measure how faithful, useful and private ``synthetic`` is with respect to ``real``.

    Parameters
    ----------
    real : DataFrame or path
        The real table the generator was trained on.
    synthetic : DataFrame or path
        The synthetic table, with the same columns as ``real``.
    holdout : DataFrame or path, optional
        Real rows the generator never saw. Utility and most privacy metrics need it; without it they are
        skipped and the report says why. Make one by setting rows aside before fitting, e.g.
        ``holdout = df.sample(frac=0.2, random_state=0); train = df.drop(holdout.index)``.
    metadata : Metadata, dict or path, optional
        Column kinds; detected from ``real`` when omitted. Id, free-text and PII columns are left out of every
        metric (they are generated, not learned) and listed in the report.
    target : str, optional
        Column to predict for the utility metrics; without it utility is skipped.
    sensitive : str or list of str, optional
        Columns an attacker tries to infer (attribute-inference risk).
    seed : int, default 0
        Seeds every subsample and model: the same inputs and seed give the same report.
    progress : bool, default True
        Show a progress bar on stderr.
    parts : iterable of str, optional
        The sections to compute, among "fidelity", "utility", "privacy" and "temporal". By default all of them,
        "temporal" only for per-entity time series (when the entity and time keys are known).
    caps : dict, optional
        Overrides of :data:`CAPS` (rows used by the costlier metrics).
    entity_key, time_key : str, optional
        For a long table of per-entity time series: the column identifying each entity and the time index (a step
        number or a timestamp). Taken from the metadata's ``entity_key`` / ``time_index`` when omitted. With them,
        the report has a ``temporal`` section (see :mod:`~twinforge.evaluate.temporal`).
    real_static, synthetic_static : DataFrame or path, optional
        Static attributes as separate tables (one row per entity, with the entity key). Without them, the static
        attributes are the columns constant within every real entity. One alone (``real_static`` with the
        long table ``sample`` writes, whose static attributes are columns) is joined into its long table(s): the
        real one and the holdout.
    lags : int, default 10
        Lags of the autocorrelation curves.
    privacy_budget : model or dict, optional
        The differential-privacy guarantee of the generator: a fitted model (its spent epsilon and delta are read
        from ``fit_info_["privacy"]``; a model fitted without DP is reported as such) or ``{"epsilon": e,
        "delta": d}``. Shown in the privacy section beside the attacks.

    Returns
    -------
    EvaluationReport
        Headline scores (``report.summary``), per-column and per-pair details, ``to_json()`` and ``to_html()``.

    Raises
    ------
    DataError
        An empty table, or ``synthetic``/``holdout`` columns that differ from ``real``'s in name or kind (every
        difference is listed), or a constant target.
    ParameterError
        A target or sensitive column that is not a learned column of ``real``, or a bad argument.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import twinforge
    >>> rng = np.random.default_rng(0)
    >>> def draw(n):
    ...     age = rng.integers(18, 90, n)
    ...     return pd.DataFrame({
    ...         "age": age,
    ...         "income": 1000 + 40 * age + rng.normal(0, 150, n),
    ...         "city": rng.choice(["Oslo", "Rome", "Lima"], n),
    ...     })
    >>> real, holdout, synthetic = draw(500), draw(500), draw(500)
    >>> report = twinforge.evaluate(real, synthetic, holdout, target="city", progress=False)
    >>> round(report.fidelity["column_shapes"], 1), round(report.privacy["dcr_share_ideal"], 2)
    (0.9, 0.5)
    >>> text = report.to_json()  # report.to_html("report.html") writes the HTML report
    """
    _check_seed(seed)
    explicit = parts is not None
    parts = _check_parts(PARTS if parts is None else parts)
    limits = _check_caps(caps)
    lags = temporal._check_lags(lags)
    sensitive_list = [sensitive] if isinstance(sensitive, str) else list(sensitive or [])
    frames = {"real": read_input(real, "real"), "synthetic": read_input(synthetic, "synthetic")}
    if holdout is not None:
        frames["holdout"] = read_input(holdout, "holdout")
    sequences = None
    keys_given = entity_key is not None or time_key is not None or real_static is not None
    if "temporal" in parts and (keys_given or explicit or _has_keys(metadata, frames["real"])):
        frames, real_static, synthetic_static = temporal.join_static(
            frames, real_static, synthetic_static, temporal.entity_key_of(metadata, frames["real"], entity_key)
        )
        meta = temporal.sequence_metadata(metadata, frames["real"], entity_key, time_key)
        prep = prepare(frames["real"], frames["synthetic"], frames.get("holdout"), meta)
        statics = temporal.static_tables(real_static, synthetic_static)
        sequences = temporal.build(frames, prep, meta.entity_key, meta.time_index, statics)
    else:
        prep = prepare(frames["real"], frames["synthetic"], frames.get("holdout"), metadata)
        parts = tuple(p for p in parts if p != "temporal")
    utility.check_target(prep, target)
    for column in sensitive_list:
        utility.check_target(prep, column, argument="sensitive column")

    names = ["pairs", "detection", "alpha_beta", "utility", "distances", "membership", "attribute"]
    rngs = seeds(seed, [*names, "discriminative", "predictive"])
    notes: list[str] = []
    subsampled: dict[str, Any] = {}
    results: dict[str, Any] = {}
    plots: dict[str, Any] = {}
    steps = _plan(prep, parts, target, sensitive_list, limits, rngs, results, plots, notes, subsampled)
    if sequences is not None:

        def run_temporal() -> None:
            results["temporal"] = temporal._temporal(sequences, rngs, limits, lags, prep.has_holdout)

        steps.append(("temporal: autocorrelation, discriminative, predictive", run_temporal))
    timings: dict[str, float] = {}
    with _progress(progress) as bar:
        task = bar.add_task("evaluating", total=len(steps)) if bar else None
        for label, step in steps:
            if bar:
                bar.update(task, description=label)
            start = time.perf_counter()
            step()
            timings[label] = round(time.perf_counter() - start, 3)
            if bar:
                bar.advance(task)

    document = _assemble(prep, parts, results, target, sensitive_list, seed, limits, notes, subsampled)
    if sequences is not None:
        document["settings"].update(lags=lags, entity_key=sequences.entity_key, time_key=sequences.time_key)
    if privacy_budget is not None and "privacy" in parts:
        document["privacy"]["differential_privacy"] = _dp_guarantee(privacy_budget)
    inputs = [s for s in (real, synthetic, holdout, metadata) if isinstance(s, (str, os.PathLike))]
    return EvaluationReport(document, plots=plots, inputs=inputs, timings=timings)


# ------------------------------------------------------------------------------------------ steps
def _plan(
    prep: Prepared,
    parts: tuple[str, ...],
    target: str | None,
    sensitive: list[str],
    caps: dict[str, int],
    rngs: dict[str, np.random.Generator],
    results: dict[str, Any],
    plots: dict[str, Any],
    notes: list[str],
    subsampled: dict[str, Any],
) -> list[tuple[str, Callable[[], None]]]:
    """The steps to run, each storing its result in ``results`` (so the progress bar can count them)."""
    steps: list[tuple[str, Callable[[], None]]] = []

    def add(label: str, fn: Callable[[], None]) -> None:
        steps.append((label, fn))

    if "fidelity" in parts:
        pair_rows = {t: subsample(prep.rows[t], caps["pair_rows"], rngs["pairs"]) for t in ("real", "synthetic")}
        for t, rows in pair_rows.items():
            if rows is not None:
                subsampled.setdefault("column_pair_trends", {})[t] = {"rows": len(rows), "of": prep.rows[t]}

        def shapes() -> None:
            results["shapes"] = fidelity._column_shapes(prep)
            results["missing"] = fidelity._missing_rates(prep)
            results["wasserstein"] = fidelity._wasserstein(prep)
            plots["columns"] = {name: fidelity.histograms(prep, name) for name in prep.columns}

        def pairs() -> None:
            results["pairs"] = fidelity._column_pair_trends(prep, pair_rows)
            results["mi"] = fidelity._mutual_information(prep, pair_rows)
            results["correlations"] = fidelity.correlations(prep, pair_rows)

        def detection() -> None:
            results["detection"] = fidelity._detection_auc(prep, rngs["detection"], caps["detection_rows"])
            n = results["detection"]["rows_per_side"]
            if n < max(prep.rows["real"], prep.rows["synthetic"]):
                subsampled["detection"] = {"rows_per_side": n, "of": dict(_sizes(prep, ("real", "synthetic")))}

        def alpha_beta() -> None:
            results["alpha_beta"] = ab = fidelity._alpha_beta(prep, rngs["alpha_beta"], caps["alpha_beta_rows"])
            if "rows" in ab and any(ab["rows"][t] < prep.rows[t] for t in ab["rows"]):
                subsampled["alpha_beta"] = {t: {"rows": ab["rows"][t], "of": prep.rows[t]} for t in ab["rows"]}

        add("column shapes, missing values, Wasserstein", shapes)
        add("column pair trends, mutual information", pairs)
        add("detection classifier", detection)
        add("alpha-precision, beta-recall", alpha_beta)

    if "utility" in parts:
        if target is None:
            notes.append("utility skipped: no target was given (pass target=COLUMN, or --target on the command line)")
        elif not prep.has_holdout:
            notes.append(
                "utility skipped: it needs a holdout, real rows the generator never saw; set some rows aside "
                "before fitting and pass them as holdout (--holdout)"
            )
        else:

            def run_utility() -> None:
                results["utility"] = u = utility._utility(prep, target, rngs["utility"], caps["train_rows"])
                notes.extend(u.pop("notes"))
                if u["subsampled"]:
                    subsampled["utility"] = u["subsampled"]
                u.pop("subsampled")

            add(f"utility (TSTR / TRTR) for {target}", run_utility)

    if "privacy" in parts:

        def copies() -> None:
            results["copies"] = privacy._exact_copies(prep)

        def distances() -> None:
            results["distances"] = d = privacy._distances(prep, rngs["distances"], caps["distance_rows"])
            if d["subsampled"]:
                subsampled["distances"] = d["subsampled"]

        add("exact copies", copies)
        add("distances to closest records", distances)
        if prep.has_holdout:

            def membership() -> None:
                results["membership"] = m = privacy._membership(
                    prep, rngs["membership"], caps["attack_rows"], caps["distance_rows"]
                )
                notes.extend(m.pop("notes"))

            add("membership inference", membership)
        else:
            notes.append(
                "dcr_share and membership inference skipped: they need a holdout, real rows the generator never "
                "saw (pass holdout=..., or --holdout)"
            )
        if sensitive:

            def attributes() -> None:
                results["attributes"] = [
                    privacy._attribute(prep, c, rngs["attribute"], caps["attack_rows"]) for c in sensitive
                ]

            add("attribute inference", attributes)
    return steps


def _sizes(prep: Prepared, tables: tuple[str, ...]) -> Iterable[tuple[str, int]]:
    return ((t, prep.rows[t]) for t in tables)


# ------------------------------------------------------------------------------------------ the document
IDEALS = {
    "fidelity": {
        "column_shapes": 1.0,
        "column_pair_trends": 1.0,
        "column_pair_trends_all_pairs": 1.0,
        "wasserstein": 0.0,
        "mutual_information": 1.0,
        "missing_rates": 1.0,
        "detection_auc": 0.5,
        "alpha_precision": 1.0,
        "beta_recall": 1.0,
    },
    "utility": {"tstr": "= trtr", "trtr": None, "ratio": 1.0, "augmentation": ">= 0"},
    "privacy": {
        "dcr_share": "dcr_share_ideal",
        "exact_copy_rate": "<= holdout's",
        "mia_auc": 0.5,
        "attribute_inference_gap": 0.0,
    },
    "temporal": {
        "autocorrelation_error": 0.0,
        "cross_correlation_error": 0.0,
        "discriminative_auc": 0.5,
        "predictive_ratio": 1.0,
        "sequence_length": 1.0,
        "static_column_shapes": 1.0,
        "static_column_pair_trends": 1.0,
    },
}
MEANINGS = {
    "column_shapes": "marginal distributions match (KS / TV complement)",
    "column_pair_trends": "correlations / contingency of related pairs match",
    "column_pair_trends_all_pairs": "the same over every pair",
    "wasserstein": "mean Wasserstein-1 distance, in units of the real IQR",
    "mutual_information": "1 - mean |NMI difference| over pairs",
    "missing_rates": "missing shares match",
    "detection_auc": "a classifier cannot tell real from synthetic",
    "alpha_precision": "synthetic rows lie where real rows are",
    "beta_recall": "synthetic rows cover the real data",
    "tstr": "model trained on synthetic, tested on holdout",
    "trtr": "model trained on real, tested on holdout",
    "ratio": "tstr / trtr",
    "augmentation": "real + synthetic minus real alone",
    "dcr_share": "share of synthetic rows closer to training than to holdout",
    "exact_copy_rate": "share of synthetic rows equal to a training row",
    "mia_auc": "strongest membership-inference attack",
    "attribute_inference_gap": "attacker's edge on training over holdout rows",
    "autocorrelation_error": "mean |ACF difference| over lags and channels",
    "cross_correlation_error": "mean |difference| of within-entity channel correlations (lags 0, 1)",
    "discriminative_auc": "a classifier cannot tell real from synthetic entities",
    "predictive_ratio": "next-step error trained on real / trained on synthetic",
    "sequence_length": "sequence lengths match (KS complement)",
    "static_column_shapes": "static attributes' marginals match",
    "static_column_pair_trends": "static attributes' pair trends match",
}


def _assemble(
    prep: Prepared,
    parts: tuple[str, ...],
    results: dict[str, Any],
    target: str | None,
    sensitive: list[str],
    seed: int,
    caps: dict[str, int],
    notes: list[str],
    subsampled: dict[str, Any],
) -> dict[str, Any]:
    from twinforge._version import __version__

    document: dict[str, Any] = {
        "twinforge_version": __version__,
        "settings": {"seed": seed, "caps": caps, "parts": list(parts)},
        "data": {
            "rows": dict(prep.rows),
            "columns": len(prep.metadata.columns),
            "learned_columns": prep.names,
            "kinds": {n: c.kind for n, c in prep.columns.items()},
            "target": target,
            "sensitive": sensitive,
        },
        "excluded_columns": prep.excluded,
        "subsampled": subsampled,
        "notes": notes,
    }
    if prep.excluded:
        notes.insert(
            0,
            "left out of every metric (generated, not learned): "
            + ", ".join(f"{n} ({k})" for n, k in prep.excluded.items()),
        )
    document["fidelity"] = _fidelity_section(prep, results) if "fidelity" in parts else {}
    document["utility"] = _utility_section(results, target, prep) if "utility" in parts else {}
    document["privacy"] = _privacy_section(prep, results, sensitive) if "privacy" in parts else {}
    document["temporal"] = results.get("temporal", {})
    document["summary"] = _summary(document)
    return document


def _fidelity_section(prep: Prepared, results: dict[str, Any]) -> dict[str, Any]:
    shapes, missing, wass = results["shapes"], results["missing"], results["wasserstein"]
    pairs, ab = results["pairs"], results["alpha_beta"]
    columns = {}
    for name, col in prep.columns.items():
        columns[name] = {
            "kind": col.kind,
            "shape_metric": shapes["columns"][name]["metric"],
            "shape": shapes["columns"][name]["score"],
            "missing_real": missing["columns"][name]["real"],
            "missing_synthetic": missing["columns"][name]["synthetic"],
            "wasserstein": (wass["columns"].get(name) or {}).get("distance"),
        }
    return {
        "column_shapes": shapes["score"],
        "column_pair_trends": pairs["score"],
        "column_pair_trends_all_pairs": pairs["score_all_pairs"],
        "pairs_counted": pairs["pairs_counted"],
        "pairs_total": pairs["pairs_total"],
        "wasserstein": wass["score"],
        "wasserstein_normalised_by": wass["normalised_by"],
        "mutual_information": results["mi"]["score"],
        "missing_rates": missing["score"],
        "detection_auc": results["detection"]["score"],
        "alpha_precision": ab["alpha_precision"],
        "beta_recall": ab["beta_recall"],
        "authenticity": ab["authenticity"],
        "columns": columns,
        "pairs": pairs["pairs"],
        "mutual_information_matrix": {k: results["mi"][k] for k in ("columns", "real", "synthetic")},
        "correlation_matrix": results["correlations"],
        "detection": results["detection"],
        "alpha_beta": ab,
    }


def _utility_section(results: dict[str, Any], target: str | None, prep: Prepared) -> dict[str, Any]:
    if "utility" in results:
        return results["utility"]
    reason = "no target was given" if target is None else "no holdout was given"
    return {"skipped": reason, "target": target, "tstr": None, "trtr": None, "ratio": None, "augmentation": None}


def _privacy_section(prep: Prepared, results: dict[str, Any], sensitive: list[str]) -> dict[str, Any]:
    d, copies = results["distances"], results["copies"]
    m = results.get("membership")
    attrs = results.get("attributes", [])
    gaps = [a["gap"] for a in attrs if a.get("gap") is not None]
    return {
        "dcr_share": d.get("dcr_share"),
        "dcr_share_ideal": d.get("dcr_share_ideal"),
        "exact_copy_rate": copies["synthetic"],
        "exact_copy_rate_holdout": copies["holdout"],
        "mia_auc": m["auc"] if m else None,
        "attribute_inference_gap": max(gaps) if gaps else None,
        "dcr": d["dcr"],
        "nndr": d["nndr"],
        "distance_rows": d["rows"],
        "dcr_histogram": d["histogram"],
        "mia": m,
        "attribute_inference": attrs,
        "holdout": prep.has_holdout,
    }


def _dp_guarantee(budget: Any) -> dict[str, Any]:
    """``{"epsilon", "delta", ...}`` from a fitted model or a dict; ``{"epsilon": None}`` for a model without DP."""
    if hasattr(budget, "fit_info_"):
        info = budget.fit_info_.get("privacy")
        if info is None:
            return {
                "epsilon": None,
                "delta": None,
                "model": budget.name,
                "note": "trained without differential privacy",
            }
        return {
            "epsilon": info["epsilon_spent"],
            "delta": info["delta_spent"],
            "epsilon_budget": info["epsilon_budget"],
            "model": budget.name,
        }
    if isinstance(budget, dict) and "epsilon" in budget:
        eps, delta = budget["epsilon"], budget.get("delta")
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0):
            raise ParameterError(f"privacy_budget epsilon must be a positive number or None, got {eps!r}")
        return {"epsilon": eps, "delta": delta}
    raise ParameterError(
        f"privacy_budget must be a fitted model or a dict like {{'epsilon': 1.0, 'delta': 1e-5}}, got {budget!r}"
    )


def _summary(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline metric: section, metric, value, ideal (a number or a rule) and meaning."""
    rows = []
    for section, ideals in IDEALS.items():
        values = document.get(section) or {}
        if not values:
            continue
        for metric, ideal in ideals.items():
            if metric not in values:
                continue
            if ideal == "dcr_share_ideal":
                ideal = values.get("dcr_share_ideal")
            elif ideal == "= trtr":
                ideal = values.get("trtr")
            elif ideal == "<= holdout's":
                ideal = values.get("exact_copy_rate_holdout")
                ideal = 0.0 if ideal is None else ideal
            rows.append(
                {
                    "section": section,
                    "metric": metric,
                    "value": values[metric],
                    "ideal": ideal,
                    "meaning": MEANINGS.get(metric, ""),
                }
            )
    return rows


# ------------------------------------------------------------------------------------------ checks
def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")


def _check_parts(parts: Iterable[str]) -> tuple[str, ...]:
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ParameterError(f"parts must name some of {', '.join(PARTS)}; got {list(parts)}")
    return tuple(p for p in PARTS if p in parts)


def _has_keys(metadata: Any, real: Any) -> bool:
    """Whether the metadata declares an entity key and a time index (per-entity time series)."""
    if metadata is None:
        return False
    from twinforge.evaluate._data import coerce_metadata

    meta = coerce_metadata(metadata, real)
    return meta.entity_key is not None and meta.time_index is not None


def _check_caps(caps: dict[str, int] | None) -> dict[str, int]:
    limits = dict(CAPS)
    for key, value in (caps or {}).items():
        if key not in CAPS:
            raise ParameterError(f"unknown cap {key!r}; caps are {', '.join(CAPS)}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 10:
            raise ParameterError(f"cap {key!r} must be an integer >= 10, got {value!r}")
        limits[key] = int(value)
    return limits


def _progress(enabled: bool) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<45}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)
