"""Detection AUC, TSTR/TRTR and DCR share for bench_auto.py. Runs in the SDV anchor venv (scikit-learn).

    ANCHOR/bin/python benchmarks/_extra_metrics.py --train train.csv --holdout holdout.csv \\
        --synthetic auto=auto.parquet --synthetic holdout=holdout.parquet ... --target churn \\
        --exclude id,name --result-out extra.json

Deliberately small (twinforge.evaluate will replace it). Per synthetic table:

- ``detection_auc``: a gradient-boosted classifier separating the real holdout from as many synthetic rows,
  5-fold cross-validated ROC AUC; 0.5 = indistinguishable. For the ``holdout`` entry, a train sample of the
  holdout's size stands in for the synthetic rows (the real-vs-real level);
- ``tstr``: a model trained on the synthetic rows predicts ``--target`` on the holdout (ROC AUC for a categorical
  target, macro one-vs-rest if it has more than two levels; R^2 for a numeric one); ``trtr`` is the same model
  trained on the real train rows (as many as the synthetic ones);
- ``dcr_share``: the share of synthetic rows closer to a train sample than to the holdout (both of the holdout's
  size), under a Gower-like distance (rank-scaled numbers, 0/1 for categories, 1 for missing vs present);
  0.5 = no closer to the training rows than to unseen rows; 1.0 = copies of training rows;
- ``exact_copies``: the share of the rows (as many as the holdout has) equal to a row of the train split in every
  scored column (missing equals missing). For the ``holdout`` entry, the holdout's own share: the level fresh
  real data has by chance (duplicates are common in tables of a few categorical columns).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--holdout", required=True)
    parser.add_argument("--synthetic", action="append", required=True, metavar="NAME=PARQUET")
    parser.add_argument("--target", default=None)
    parser.add_argument("--exclude", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result-out", required=True)
    args = parser.parse_args(argv)

    exclude = [c for c in args.exclude.split(",") if c]
    train = pd.read_csv(args.train).drop(columns=exclude)
    holdout = pd.read_csv(args.holdout).drop(columns=exclude)
    enc = Encoder(train)
    rng = np.random.default_rng(args.seed)
    train_sample = train.iloc[rng.choice(len(train), min(len(holdout), len(train)), replace=False)]
    results = {}
    for item in args.synthetic:
        name, _, path = item.partition("=")
        if not len(train.columns):  # every column excluded (airlines: a key and a name): nothing to score
            results[name] = {"detection_auc": None, "dcr_share": None, "exact_copies": None}
            continue
        synthetic = pd.read_parquet(path)[list(train.columns)]
        if name == "holdout":
            results[name] = {
                "detection_auc": guarded(results, name, detection_auc, enc, holdout, train_sample, args.seed),
                "exact_copies": guarded(results, name, exact_copies, enc, holdout, train),
                **results.get(name, {}),
            }
            continue
        few = synthetic.iloc[: len(holdout)]
        results[name] = {
            "detection_auc": guarded(results, name, detection_auc, enc, holdout, few, args.seed),
            "dcr_share": guarded(results, name, dcr_share, enc, few, train_sample, holdout),
            "exact_copies": guarded(results, name, exact_copies, enc, few, train),
            **results.get(name, {}),
        }
        if args.target:
            scores = guarded(results, name, utility, enc, synthetic, train, holdout, args.target, args.seed)
            results[name].update(scores or {"tstr": None, "trtr": None, "utility_metric": None})
    Path(args.result_out).write_text(json.dumps(results, indent=2))


def guarded(results: dict, name: str, metric, *args):
    """``metric(*args)``, or None with the error noted under ``results[name]["errors"]`` (one side's odd output
    must not cost every side its scores)."""
    try:
        return metric(*args)
    except Exception as exc:
        results.setdefault(name, {}).setdefault("errors", []).append(f"{metric.__name__}: {exc!r}")
        return None


def fit_ready(x: np.ndarray) -> np.ndarray:
    """Columns that are missing in every row become 0: no signal either way, and scikit-learn's binning fails on
    them (a side whose dates did not parse, say)."""
    x = x.copy()
    x[:, np.isnan(x).all(0)] = 0.0
    return x


class Encoder:
    """Columns as numbers: numeric as is, dates as epoch days, text as frequency-ranked codes (-1 unseen)."""

    def __init__(self, real: pd.DataFrame):
        self.kinds, self.codes, self.ranks = {}, {}, {}
        for col in real.columns:
            s = real[col]
            if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
                parsed = _as_dates(s)
                if parsed is not None:
                    self.kinds[col] = "date"
                    self.ranks[col] = np.sort(parsed.dropna().to_numpy())
                else:
                    self.kinds[col] = "cat"
                    self.codes[col] = {v: i for i, v in enumerate(s.astype(str).value_counts().index)}
            else:
                self.kinds[col] = "num"
                self.ranks[col] = np.sort(s.dropna().to_numpy(dtype=float))

    def numbers(self, df: pd.DataFrame) -> np.ndarray:
        cols = []
        for col, kind in self.kinds.items():
            s = df[col]
            if kind == "cat":
                cols.append(np.where(s.isna(), np.nan, s.astype(str).map(self.codes[col]).fillna(-1)).astype(float))
            elif kind == "date":
                parsed = _as_dates(s, force=True)
                cols.append(parsed.to_numpy(dtype=float))
            else:
                cols.append(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float))
        return np.column_stack(cols)

    def scaled(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Numbers on [0, 1] by their rank among the real values, and a mask of the categorical columns."""
        x = self.numbers(df)
        is_cat = np.array([k == "cat" for k in self.kinds.values()])
        for j, (col, kind) in enumerate(self.kinds.items()):
            if kind != "cat" and len(self.ranks[col]):
                x[:, j] = np.searchsorted(self.ranks[col], x[:, j]) / len(self.ranks[col])
        return x, is_cat


def _as_dates(s: pd.Series, force: bool = False):
    if not force and (s.dtype != object or s.dropna().astype(str).str.match(r"^\d{4}-\d{2}-\d{2}").mean() < 0.95):
        return None
    parsed = pd.to_datetime(s, errors="coerce", utc=True)
    return (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0


def detection_auc(enc: Encoder, real: pd.DataFrame, other: pd.DataFrame, seed: int) -> float | None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if min(len(real), len(other)) < 5:  # too few rows for 5 folds (airlines: 3 holdout rows)
        return None
    x = fit_ready(np.vstack([enc.numbers(real), enc.numbers(other)]))
    y = np.r_[np.zeros(len(real)), np.ones(len(other))]
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, x, y, cv=folds, scoring="roc_auc").mean())


def utility(enc: Encoder, synthetic, train, holdout, target: str, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import r2_score, roc_auc_score

    j = list(enc.kinds).index(target)
    classify = enc.kinds[target] != "num" or train[target].nunique() <= 10

    def xy(df):
        x = enc.numbers(df)
        y = x[:, j]
        keep = ~np.isnan(y)
        return np.delete(x, j, axis=1)[keep], y[keep]

    def score(df) -> float | None:
        x, y = xy(df)
        xh, yh = xy(holdout)
        if classify:
            classes = np.unique(yh)
            if len(np.unique(y)) < 2:
                return None
            model = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(fit_ready(x), y)
            proba = model.predict_proba(xh)
            if len(classes) == 2:
                pos = list(model.classes_).index(classes[1]) if classes[1] in model.classes_ else None
                return float(roc_auc_score(yh == classes[1], proba[:, pos])) if pos is not None else None
            full = np.zeros((len(yh), len(classes)))
            for k, c in enumerate(classes):
                if c in model.classes_:
                    full[:, k] = proba[:, list(model.classes_).index(c)]
            full = full / np.clip(full.sum(1, keepdims=True), 1e-12, None)
            return float(roc_auc_score(yh, full, multi_class="ovr", labels=classes))
        model = HistGradientBoostingRegressor(max_iter=200, random_state=seed).fit(fit_ready(x), y)
        return float(r2_score(yh, model.predict(xh)))

    n = min(len(synthetic), len(train))
    metric = "auc" if classify else "r2"
    return {"tstr": score(synthetic.iloc[:n]), "trtr": score(train.iloc[:n]), "utility_metric": metric}


def dcr_share(enc: Encoder, synthetic, train_sample, holdout) -> float:
    s, is_cat = enc.scaled(synthetic)
    t, _ = enc.scaled(train_sample)
    h, _ = enc.scaled(holdout)
    d_train, d_hold = _nearest(s, t, is_cat), _nearest(s, h, is_cat)
    return float(np.mean(d_train < d_hold) + 0.5 * np.mean(d_train == d_hold))


def exact_copies(enc: Encoder, rows: pd.DataFrame, train: pd.DataFrame) -> float:
    """The share of ``rows`` equal to some train row in every column (numbers compared as encoded)."""
    if not len(rows):
        return 0.0
    seen = {r.tobytes() for r in np.nan_to_num(enc.numbers(train), nan=-9.99e300)}
    return float(np.mean([r.tobytes() in seen for r in np.nan_to_num(enc.numbers(rows), nan=-9.99e300)]))


def _nearest(a: np.ndarray, b: np.ndarray, is_cat: np.ndarray, chunk: int = 256) -> np.ndarray:
    out = np.empty(len(a))
    for i in range(0, len(a), chunk):
        x = a[i : i + chunk, None, :]
        diff = np.abs(x - b[None, :, :])
        diff[:, :, is_cat] = (diff[:, :, is_cat] > 0).astype(float)
        both_nan = np.isnan(x) & np.isnan(b[None, :, :])
        diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), 1.0, diff))
        out[i : i + chunk] = diff.mean(2).min(1)
    return out


if __name__ == "__main__":
    main()
