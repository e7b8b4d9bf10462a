"""mst's column shapes column by column, at several epsilons: where fidelity goes as the budget changes.

Usage, from the repository root (one /work/heavy call; a minute or two on weather)::

    .venv/bin/python benchmarks/privacy_mst_columns.py --dataset weather --seeds 0 --epsilons 3,10,none

The split is bench_privacy.py's (80/20 by the seed, at most 3,000 rows); every line is one column: its shape score
(1 - KS or 1 - TV, twinforge.evaluate), mst's quantile bins before and after its compression, and the DP range the
column domains released (None: without DP).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from bench_privacy import DATASETS, REPO

import twinforge
from twinforge.evaluate.fidelity import column_shapes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets"))
    p.add_argument("--dataset", default="weather", choices=list(DATASETS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--epsilons", default="3,10,none")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    full = pd.read_csv(f"{args.datasets}/{DATASETS[args.dataset][0]}")
    for seed in (int(s) for s in args.seeds.split(",")):
        df = full.sample(3000, random_state=seed).reset_index(drop=True) if len(full) > 3000 else full
        rng = np.random.default_rng(seed)
        train = df[~(rng.random(len(df)) < 0.2)].reset_index(drop=True)
        meta = twinforge.Metadata.detect(train)
        for text in args.epsilons.split(","):
            eps = None if text == "none" else float(text)
            model = twinforge.create("mst", seed=seed, epsilon=eps, iters=500).fit(train, metadata=meta)
            shapes = column_shapes(train, model.sample(len(train), seed=seed), meta)
            domain = (model.fit_info_.get("privacy") or {}).get("domain", {})
            bins = {c["name"]: (c["size"], c["compressed"]) for c in model.columns_}
            print(f"seed {seed} epsilon {text}: column shapes {shapes['score']:.3f}", flush=True)
            for name, d in shapes["columns"].items():
                print(
                    f"  {name:14s} {d['score']:.3f}  bins {bins.get(name)}  range {domain.get(name, {}).get('bounds')}"
                )


if __name__ == "__main__":
    main()
