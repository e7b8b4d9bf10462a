"""The membership-inference AUC of one bench_privacy run, with the balanced and the all-members estimator.

Usage, from the repository root (one run per call, under the slot runner)::

    /work/heavy .venv/bin/python benchmarks/privacy_mia_variance.py --dataset weather --model mst --epsilon 1 \
        --seed 1 [--draws 10] [--out benchmarks/results/privacy_mia_variance.json]

It rebuilds the run exactly as ``bench_privacy.py`` does (the same subsample, split, model, parameters and seed),
then scores the benchmark's synthetic table (``sample(len(train), seed=seed)``, evaluation seed ``seed``) with
both estimators of :func:`twinforge.evaluate.privacy._membership`:

- *balanced* (before 2026-11-24): as many members (training rows, drawn at random) as non-members (holdout rows);
- *all members* (now): every training row is a member (up to the cap).

Each with its Hanley-McNeil standard error and 95% interval (AUC +- 1.96 se). Then, to see how much of the
per-run estimate is noise of the draw, ``--draws`` more synthetic tables of the same fitted model (sampling seeds
1000, 1001, ...; evaluation seeds alike) are scored with both estimators: the sd of the AUC over those draws is the
spread that comes from the synthetic draw and the attack's own random choices, with the real rows fixed. The
balanced estimator also draws which members it scores, so its spread includes that choice. And ``--eval-seeds``
evaluation seeds (0, 1, ...) on the benchmark's draw alone: the spread of the attack's own random choices (which
members the balanced estimator takes, the density attack's halves and mixtures), with rows and draw fixed.

Results are merged into the JSON under ``dataset/model/epsilon/seed`` and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import twinforge
from twinforge.evaluate import CAPS, privacy
from twinforge.evaluate._data import prepare, seeds

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from bench_privacy import DATASETS, params_for  # noqa: E402

# the generator names twinforge.evaluate spawns, in its order: its "membership" stream is reproduced exactly
EVALUATE_STREAMS = [
    "pairs",
    "detection",
    "alpha_beta",
    "utility",
    "distances",
    "membership",
    "attribute",
    "discriminative",
    "predictive",
]


def split(dataset: str, seed: int, datasets: Path, rows: int) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """bench_privacy's subsample and 80/20 split of one seed."""
    file, target = DATASETS[dataset]
    df = pd.read_csv(datasets / file)
    if len(df) > rows:
        df = df.sample(rows, random_state=seed).reset_index(drop=True)
    is_holdout = np.random.default_rng(seed).random(len(df)) < 0.2
    return df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True), target


def score(train, synthetic, holdout, meta, eval_seed: int, balanced: bool) -> dict:
    rng = seeds(eval_seed, EVALUATE_STREAMS)["membership"]
    m = privacy._membership(
        prepare(train, synthetic, holdout, meta), rng, CAPS["attack_rows"], CAPS["distance_rows"], balanced
    )
    return {
        "auc": m["auc"],
        "se": m["auc_se"],
        "ci95": [m["auc"] - 1.96 * m["auc_se"], m["auc"] + 1.96 * m["auc_se"]],
        "attacks": m["attacks"],
        "members": m["members"],
        "non_members": m["non_members"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--model", default="mst")
    p.add_argument("--epsilon", default="1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--eval-seeds", type=int, default=20)
    p.add_argument("--rows", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--datasets", type=Path, default=BENCH_DIR.parent.parent / "shared" / "datasets")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "privacy_mia_variance.json")
    args = p.parse_args(argv)

    train, holdout, _ = split(args.dataset, args.seed, args.datasets, args.rows)
    meta = twinforge.Metadata.detect(train)
    epsilon = None if args.epsilon == "none" else float(args.epsilon)
    params = params_for(args.model, args.epochs, epsilon)
    synth = twinforge.create(args.model, seed=args.seed, **params).fit(train, metadata=meta)
    run: dict = {"train_rows": len(train), "holdout_rows": len(holdout), "draws": args.draws}
    bench_draw = synth.sample(len(train), seed=args.seed)
    run["benchmark_draw"] = {
        name: score(train, bench_draw, holdout, meta, args.seed, balanced)
        for name, balanced in (("balanced", True), ("all_members", False))
    }
    spread: dict[str, list] = {"balanced": [], "all_members": []}
    for k in range(args.draws):
        synthetic = synth.sample(len(train), seed=1000 + k)
        for name, balanced in (("balanced", True), ("all_members", False)):
            spread[name].append(score(train, synthetic, holdout, meta, 1000 + k, balanced))
    for k in range(args.eval_seeds):
        for name, balanced in (("balanced", True), ("all_members", False)):
            spread.setdefault(f"{name}_eval_seeds", []).append(score(train, bench_draw, holdout, meta, k, balanced))
    run["spread"] = {
        name: {
            "auc_mean": float(np.mean([r["auc"] for r in runs])),
            "auc_sd": float(np.std([r["auc"] for r in runs], ddof=1)) if len(runs) > 1 else None,
            "se_mean": float(np.mean([r["se"] for r in runs])),
            "attack_means": {
                a: float(np.mean([r["attacks"][a] for r in runs if r["attacks"][a] is not None]))
                for a in runs[0]["attacks"]
            },
            "aucs": [r["auc"] for r in runs],
        }
        for name, runs in spread.items()
        if runs
    }
    key = f"{args.dataset}/{args.model}/{args.epsilon}/{args.seed}"
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc[key] = {**run, "command": " ".join(["benchmarks/privacy_mia_variance.py", *(argv or sys.argv[1:])])}
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, args.out)

    print(f"{key}: {len(train)} training rows, {len(holdout)} holdout rows")
    for name, r in run["benchmark_draw"].items():
        attacks = ", ".join(f"{a} {v:.3f}" for a, v in r["attacks"].items() if v is not None)
        print(
            f"  benchmark draw, {name:11s}: AUC {r['auc']:.3f}, se {r['se']:.3f}, 95% [{r['ci95'][0]:.3f}, "
            f"{r['ci95'][1]:.3f}] ({r['members']} members, {r['non_members']} non-members; {attacks})"
        )
    for name, r in run["spread"].items():
        sd = "n/a" if r["auc_sd"] is None else f"{r['auc_sd']:.3f}"
        attacks = ", ".join(f"{a} {v:.3f}" for a, v in r["attack_means"].items())
        over = f"benchmark draw, {args.eval_seeds} eval seeds" if "eval" in name else f"{args.draws} other draws"
        print(
            f"  {over}, {name.replace('_eval_seeds', ''):11s}: AUC mean {r['auc_mean']:.3f}, sd {sd}, "
            f"mean se {r['se_mean']:.3f} (attack means: {attacks})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
