"""Detection AUC and machine-learning utility (TSTR / TRTR) of synthetic tables, for bench_neural.py.

Needs pandas, pyarrow and scikit-learn only: bench_neural.py runs it with the SDV anchor venv's Python (which has
them), so that the project's venv does not need scikit-learn::

    ANCHOR/bin/python benchmarks/_ml_scores.py --train train.csv --holdout holdout.csv --target churn \\
        --task classification --synthetic ctgan=ctgan.parquet --exclude id --seed 0 --result-out ml.json

- detection: as many synthetic rows as the real holdout has, labelled 1, against the holdout rows, labelled 0; the
  ROC AUC of 5-fold out-of-fold predictions of a gradient-boosted tree classifier (0.5 = indistinguishable);
- TSTR: the same kind of model trained on the synthetic table (as many rows as the real training table) to predict
  ``--target``, scored on the real holdout; TRTR: trained on the real training table instead. Classification is
  scored by ROC AUC (macro one-vs-rest for more than two classes), regression by R^2 (on the holdout rows whose
  target is present: flights' ``arr_delay`` is missing in 2% of rows).

Columns left out (``--exclude``: ids, PII and free text) are dropped first; text columns become one-hot
categories (levels seen in the real training table), datetimes their epoch seconds.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

warnings.simplefilter("ignore")


def features(df: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Numeric features: numbers as they are, booleans 0/1, text one-hot on the reference's levels."""
    out = {}
    for col in reference.columns:
        ref, s = reference[col], df[col]
        if pd.api.types.is_bool_dtype(ref) or pd.api.types.is_numeric_dtype(ref):
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
            continue
        parsed = pd.to_datetime(ref, errors="coerce", format="mixed")
        if parsed.notna().mean() > 0.9 and ref.notna().any():
            out[col] = pd.to_datetime(s, errors="coerce", format="mixed").astype("int64") / 1e9
            continue
        levels = ref.astype(str).value_counts().index[:50]
        text = s.astype(str)
        for level in levels:
            out[f"{col}={level}"] = (text == level).astype("float64")
    return pd.DataFrame(out, index=df.index)


def detection_auc(holdout: pd.DataFrame, synthetic: pd.DataFrame, reference: pd.DataFrame, seed: int) -> float:
    fake = synthetic.sample(n=min(len(holdout), len(synthetic)), random_state=seed)
    x = pd.concat([features(holdout, reference), features(fake, reference)], ignore_index=True)
    y = np.r_[np.zeros(len(holdout)), np.ones(len(fake))]
    model = HistGradientBoostingClassifier(random_state=seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    p = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def utility(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, reference: pd.DataFrame, seed: int):
    cols = [c for c in reference.columns if c != target]
    x_train, x_test = features(train[cols], reference[cols]), features(test[cols], reference[cols])
    if task == "regression":
        y_train = pd.to_numeric(train[target], errors="coerce")
        keep = y_train.notna().to_numpy()
        model = HistGradientBoostingRegressor(random_state=seed).fit(x_train[keep], y_train[keep])
        y_test = pd.to_numeric(test[target], errors="coerce")
        scored = y_test.notna().to_numpy()  # a holdout row without a target has nothing to score
        return float(r2_score(y_test[scored], model.predict(x_test[scored])))
    classes = sorted(reference[target].dropna().astype(str).unique())
    y_train = train[target].astype(str)
    keep = train[target].notna().to_numpy()
    present = sorted(y_train[keep].unique())
    if len(present) < 2:
        return 0.5  # a synthetic table with one class predicts nothing
    model = HistGradientBoostingClassifier(random_state=seed).fit(x_train[keep], y_train[keep])
    proba = np.zeros((len(test), len(classes)))
    proba[:, [classes.index(c) for c in model.classes_]] = model.predict_proba(x_test)
    y_test = test[target].astype(str).to_numpy()
    if len(classes) == 2:
        return float(roc_auc_score(y_test == classes[1], proba[:, 1]))
    proba = (proba + 1e-9) / (proba + 1e-9).sum(1, keepdims=True)
    return float(roc_auc_score(y_test, proba, multi_class="ovr", average="macro", labels=classes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--holdout", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=("classification", "regression"), required=True)
    parser.add_argument("--synthetic", action="append", required=True, metavar="NAME=PARQUET")
    parser.add_argument("--exclude", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result-out", required=True)
    args = parser.parse_args(argv)

    exclude = [c for c in args.exclude.split(",") if c]
    train = pd.read_csv(args.train).drop(columns=exclude)
    holdout = pd.read_csv(args.holdout).drop(columns=exclude)
    result = {
        "target": args.target,
        "task": args.task,
        "metric": "R^2" if args.task == "regression" else "ROC AUC",
        "holdout_rows": len(holdout),
        "trtr": utility(train, holdout, args.target, args.task, train, args.seed),
        "detection_real_vs_real": detection_auc(holdout, train, train, args.seed),
        "models": {},
    }
    for item in args.synthetic:
        name, _, path = item.partition("=")
        synthetic = pd.read_parquet(path).drop(columns=exclude)
        tstr = utility(synthetic, holdout, args.target, args.task, train, args.seed)
        result["models"][name] = {
            "detection_auc": detection_auc(holdout, synthetic, train, args.seed),
            "tstr": tstr,
            "tstr_over_trtr": tstr / result["trtr"] if result["trtr"] > 0 else None,
        }
    Path(args.result_out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
