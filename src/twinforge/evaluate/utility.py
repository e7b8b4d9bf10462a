"""Utility: is the synthetic table as useful as the real one for learning a target?

Needs a *holdout*: real rows the generator never saw. Each model is trained on one table and tested on the
holdout:

- **TSTR** (train on synthetic, test on real): trained on ``synthetic``;
- **TRTR** (train on real, test on real): trained on ``real`` (the generator's training data), the reference;
- **augmented**: trained on ``real`` plus as many synthetic rows as real has (at most), to see whether adding
  synthetic rows helps or hurts.

Models: histogram gradient boosting (scikit-learn's ``HistGradientBoosting*``) and a linear model (logistic
regression or ridge on standardised numbers and one-hot levels). Scores: ROC-AUC (macro one-vs-rest for more
than two classes) and F1 (of the rarer real class for two classes, macro otherwise) for a categorical or boolean
target (an integer target with two values counts as one); R^2 for a numeric target. Headline figures are the
gradient-boosting model's ROC-AUC or R^2:

=============================  ==========  =======================================================================
metric                         ideal       what it is
=============================  ==========  =======================================================================
tstr                           = trtr      score of the model trained on synthetic
trtr                           --          score of the model trained on real (the reference)
ratio                          1           ``tstr / trtr`` (None when trtr <= 0)
augmentation                   >= 0        score trained on real + synthetic minus trtr
=============================  ==========  =======================================================================

Rows whose target is missing are left out of training and testing, and the report says how many. Tables
above ``train_cap`` rows (training and holdout alike) are subsampled (seeded) and the report says so.

References
----------
- C. Esteban, S. L. Hyland, G. Rätsch, "Real-valued (Medical) Time Series Generation with Recurrent Conditional
  GANs", 2017 (train on synthetic, test on real).
- J. Jordon, J. Yoon, M. van der Schaar, "Measuring the quality of Synthetic data for use in competitions",
  2018 (TSTR against TRTR).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinforge.errors import DataError, ParameterError
from twinforge.evaluate._data import (
    MixedEncoder,
    Prepared,
    categorical_mask,
    prepare,
    random_state,
    threads,
    trainable,
    tree_matrix,
)

__all__ = ["check_target", "task_of", "utility"]

MODELS = ("gradient_boosting", "linear")
MAX_CLASSES = 50  # gradient boosting grows one tree per class and round


def task_of(prep: Prepared, target: str) -> str:
    """'classification' for categorical, boolean and two-valued integer targets, else 'regression'."""
    col = prep.columns[target]
    if col.discrete:
        return "classification"
    real = prep.values["real"][target]
    if col.kind == "integer" and len(np.unique(real[~np.isnan(real)])) == 2:
        return "classification"
    return "regression"


def check_target(prep: Prepared, target: str | None, argument: str = "target") -> None:
    """A clear error for a target that is not a learned column of real or that is constant there."""
    if target is None:
        return
    if not isinstance(target, str):
        raise ParameterError(f"{argument} must be a column name, got {target!r}")
    if target not in prep.metadata.columns:
        raise ParameterError(
            f"{argument} {target!r} is not a column of real; columns are {list(prep.metadata.columns)}"
        )
    if target not in prep.columns:
        kind = prep.excluded[target]
        raise ParameterError(
            f"{argument} {target!r} is a generated {kind} column (not learned by the models): "
            "choose a continuous, integer, datetime, categorical or boolean column"
        )
    col = prep.columns[target]
    if col.kind == "datetime" and argument == "target":
        raise ParameterError(f"target {target!r} is a datetime column: choose a numeric or categorical target")
    real = prep.values["real"][target]
    observed = real[real >= 0] if col.discrete else real[~np.isnan(real)]
    if argument == "target" and col.discrete and len(np.unique(observed)) > MAX_CLASSES:
        raise ParameterError(
            f"target {target!r} has {len(np.unique(observed)):,} levels in real; utility is measured for targets "
            f"with at most {MAX_CLASSES} classes: choose another target, or group its levels"
        )
    if len(np.unique(observed)) < 2:
        value = (col.levels[observed[0]] if col.discrete else observed[0]) if len(observed) else "missing"
        raise DataError(
            f"{argument} {target!r} is constant in real (every row is {value!r}): there is nothing to predict; "
            "choose a column with at least two values"
        )


def _labels(prep: Prepared, target: str, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Labels (class codes or numbers) and the mask of rows where the target is present."""
    y = arrays[target]
    if prep.columns[target].discrete:
        return y, y >= 0
    return y, ~np.isnan(y)


def _classes(prep: Prepared, target: str, y: np.ndarray) -> np.ndarray:
    if prep.columns[target].discrete:
        return y.astype("int64")
    values = np.unique(prep.values["real"][target][~np.isnan(prep.values["real"][target])])
    return np.searchsorted(values, y).astype("int64")  # two-valued integer target -> 0/1


def _fit_predict(
    model_name: str,
    task: str,
    x_train: dict[str, np.ndarray],
    x_test: np.ndarray,
    prep: Prepared,
    features: list[str],
    seed: int,
    n_classes: int,
) -> np.ndarray:
    """Predictions on the test rows: class probabilities (n x n_classes) or numbers."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = trainable(x_train["x"]), x_train["y"]
    if task == "classification":
        classes = np.unique(y)
        if len(classes) < 2:  # a constant synthetic target: the only possible model predicts that class
            proba = np.zeros((len(x_test), n_classes))
            proba[:, int(classes[0])] = 1.0
            return proba
        if model_name == "gradient_boosting":
            model = HistGradientBoostingClassifier(
                categorical_features=categorical_mask(prep, features), early_stopping=False, random_state=seed
            )
        else:
            model = make_pipeline(StandardScaler(copy=False), LogisticRegression(max_iter=1000))
        model.fit(x, y)
        proba = np.zeros((len(x_test), n_classes))
        proba[:, model.classes_.astype(int)] = model.predict_proba(x_test)
        return proba
    if model_name == "gradient_boosting":
        model = HistGradientBoostingRegressor(
            categorical_features=categorical_mask(prep, features), early_stopping=False, random_state=seed
        )
    else:
        model = make_pipeline(StandardScaler(copy=False), Ridge(alpha=1.0))
    model.fit(x, y)
    return model.predict(x_test)


def _scores(task: str, y: np.ndarray, pred: np.ndarray, positive: int | None) -> dict[str, float | None]:
    from sklearn.metrics import f1_score, r2_score, roc_auc_score

    if task == "regression":
        return {"r2": float(r2_score(y, pred))}
    present = np.unique(y)
    if positive is not None:  # two classes
        auc = float(roc_auc_score(y == positive, pred[:, positive])) if len(present) == 2 else None
        f1 = float(f1_score(y == positive, pred.argmax(axis=1) == positive, zero_division=0))
        return {"roc_auc": auc, "f1": f1}
    aucs = [roc_auc_score(y == c, pred[:, c]) for c in present if 0 < (y == c).sum() < len(y)]
    f1 = float(f1_score(y, pred.argmax(axis=1), labels=present, average="macro", zero_division=0))
    return {"roc_auc": float(np.mean(aucs)) if aucs else None, "f1": f1}


def _utility(prep: Prepared, target: str, rng: np.random.Generator, train_cap: int) -> dict[str, Any]:
    check_target(prep, target)
    task = task_of(prep, target)
    features = [c for c in prep.names if c != target]
    if not features:
        raise DataError(f"target {target!r} is the only learned column: utility needs at least one other column")
    encoder = MixedEncoder(prep, features)
    notes: list[str] = []
    subsampled: dict[str, Any] = {}
    data: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for table in ("real", "synthetic", "holdout"):
        arrays = prep.values[table]
        y, present = _labels(prep, target, arrays)
        dropped = int((~present).sum())
        if dropped:
            notes.append(f"{dropped:,} {table} row(s) with a missing target {target!r} left out of utility")
        rows = np.flatnonzero(present)
        if len(rows) > train_cap:
            subsampled[table] = {"rows": train_cap, "of": len(rows)}
            rows = np.sort(rng.choice(rows, train_cap, replace=False))
        data[table] = ({name: a[rows] for name, a in arrays.items()}, y[rows])
    for table in ("real", "synthetic", "holdout"):
        if len(data[table][1]) == 0:
            raise DataError(f"{table} has no row with a value in target {target!r}: utility cannot be measured")
    positive = None
    n_classes = 0
    if task == "classification":
        ys = {t: _classes(prep, target, data[t][1]) for t in data}
        data = {t: (data[t][0], ys[t]) for t in data}
        n_classes = int(max(y.max() for y in ys.values())) + 1
        real_counts = np.bincount(ys["real"], minlength=n_classes)
        if (real_counts > 0).sum() == 2:
            present = np.flatnonzero(real_counts)
            positive = int(present[np.argmin(real_counts[present])])
        if len(np.unique(ys["synthetic"])) < 2:
            notes.append(f"synthetic has one class of {target!r}: the TSTR models can only predict that class")

    n_aug = min(len(data["synthetic"][1]), len(data["real"][1]))
    aug_rows = np.sort(rng.choice(len(data["synthetic"][1]), n_aug, replace=False))
    models: dict[str, Any] = {}
    main = "r2" if task == "regression" else "roc_auc"
    for name in MODELS:
        # each training matrix is built just before its fit and freed after it, so memory holds one at a time
        build = (lambda a, f=features: tree_matrix(prep, a, f)) if name == "gradient_boosting" else encoder.transform

        def training(label: str, build=build) -> tuple[np.ndarray, np.ndarray]:
            if label == "trtr":
                return build(data["real"][0]), data["real"][1]
            if label == "tstr":
                return build(data["synthetic"][0]), data["synthetic"][1]
            extra = {c: a[aug_rows] for c, a in data["synthetic"][0].items()}
            x = np.vstack([build(data["real"][0]), build(extra)])
            return x, np.r_[data["real"][1], data["synthetic"][1][aug_rows]]

        x_test, y_test = build(data["holdout"][0]), data["holdout"][1]
        seed = random_state(rng)
        result = {}
        for label in ("trtr", "tstr", "augmented"):
            x, y = training(label)
            with threads():
                pred = _fit_predict(name, task, {"x": x, "y": y}, x_test, prep, features, seed, n_classes)
            del x
            result[label] = _scores(task, y_test, pred, positive)
        trtr, tstr = result["trtr"][main], result["tstr"][main]
        result["ratio"] = tstr / trtr if trtr is not None and tstr is not None and trtr > 0 else None
        aug = result["augmented"][main]
        result["augmentation"] = aug - trtr if aug is not None and trtr is not None else None
        models[name] = result

    gb = models["gradient_boosting"]
    out = {
        "target": target,
        "task": task,
        "metric": main,
        "tstr": gb["tstr"][main],
        "trtr": gb["trtr"][main],
        "ratio": gb["ratio"],
        "augmentation": gb["augmentation"],
        "models": models,
        "rows": {t: len(data[t][1]) for t in data},
        "augmented_synthetic_rows": n_aug,
        "notes": notes,
        "subsampled": subsampled,
    }
    if positive is not None:
        out["positive_class"] = _class_label(prep, target, positive)
    return out


def _class_label(prep: Prepared, target: str, code: int) -> Any:
    col = prep.columns[target]
    if col.discrete:
        level = col.levels[code]
        return level if isinstance(level, (str, int, float, bool)) else str(level)
    real = prep.values["real"][target]
    return float(np.unique(real[~np.isnan(real)])[code])


def utility(
    real: Any,
    synthetic: Any,
    holdout: Any,
    target: str,
    metadata: Any = None,
    *,
    seed: int = 0,
    train_cap: int = 100_000,
) -> dict[str, Any]:
    """TSTR against TRTR on ``holdout`` for ``target``, for two models, plus augmentation; see the module doc.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def draw(n):
    ...     x = rng.normal(size=n)
    ...     return pd.DataFrame({"x": x, "y": np.where(x + rng.normal(0, 0.5, n) > 0, "yes", "no")})
    >>> result = utility(draw(400), draw(400), draw(400), target="y")
    >>> result["task"], result["tstr"] > 0.8, abs(result["ratio"] - 1) < 0.1
    ('classification', True, True)
    """
    if holdout is None:
        raise ParameterError("utility needs a holdout: real rows the generator never saw")
    prep = prepare(real, synthetic, holdout, metadata)
    return _utility(prep, target, np.random.default_rng(seed), train_cap)
