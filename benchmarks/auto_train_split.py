"""TSTR/TRTR and DCR share of ``auto`` on a split of bench_auto's TRAINING rows only (for tuning without the test).

bench_auto's split (seed 0, 20% holdout) is made first and its holdout is never read: of its training rows, 80%
are fitted and 20% scored (seed 1), with bench_auto's metric code (``_extra_metrics``). Per configuration (a JSON
object of ``auto`` parameters; ``"fit_seed"`` and ``"mod"``, module constants of ``twinforge.models.autoregressive``
to override, are taken out first), one fit and three sampling seeds; with ``--dcr``, the DCR share of 8 draws of
as many rows as are scored::

    .venv/bin/python benchmarks/auto_train_split.py ames '{}' '{"width": 64}' '{"mod": {"_SHAPE_SCALE": 10.0}}' --dcr
"""

from __future__ import annotations

import json
import sys
import time

import _extra_metrics as xm
import numpy as np
import pandas as pd
from bench_auto import DATASETS, TARGETS

import twinforge
import twinforge.models.autoregressive as ar


def split(name: str, datasets: str = "/work/shared/datasets") -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.read_csv(f"{datasets}/{DATASETS[name]}")
    order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
    train = real.iloc[order[round(len(real) * 0.2) :]].reset_index(drop=True)  # bench_auto's training rows
    inner = pd.Series(range(len(train))).sample(frac=1.0, random_state=1).to_numpy()
    n_scored = round(len(train) * 0.2)
    return train.iloc[inner[n_scored:]].reset_index(drop=True), train.iloc[inner[:n_scored]].reset_index(drop=True)


def main(argv: list[str]) -> None:
    dcr = "--dcr" in argv
    argv = [a for a in argv if a != "--dcr"]
    name, configs = argv[0], [json.loads(c) for c in argv[1:]] or [{}]
    fit_df, scored = split(name)
    meta = twinforge.Metadata.detect(fit_df)
    excluded = [c for c in meta.columns if c not in meta.learned_columns]
    fit_x, test_x = fit_df.drop(columns=excluded), scored.drop(columns=excluded)
    enc = xm.Encoder(fit_x)
    train_sample = fit_x.iloc[np.random.default_rng(0).choice(len(fit_x), len(test_x), replace=False)]
    for cfg in configs:
        fit_seed, mods = cfg.pop("fit_seed", 0), cfg.pop("mod", {})
        saved = {k: getattr(ar, k) for k in mods}
        for k, v in mods.items():
            setattr(ar, k, v)
        try:
            start = time.process_time()
            model = twinforge.create("auto", seed=fit_seed, progress=False, **cfg).fit(fit_df, meta)
            fit_cpu = time.process_time() - start
            ratios, shares = [], []
            for s in (0, 1, 2):
                u = xm.utility(enc, model.sample(len(fit_df), seed=s)[fit_x.columns], fit_x, test_x, TARGETS[name], 0)
                ratios.append(u["tstr"] / u["trtr"])
            if dcr:
                draws = model.sample(8 * len(test_x), seed=10)[fit_x.columns]
                for c in range(8):
                    rows = draws.iloc[c * len(test_x) : (c + 1) * len(test_x)]
                    shares.append(xm.dcr_share(enc, rows, train_sample, test_x))
        finally:
            for k, v in saved.items():
                setattr(ar, k, v)
        line = f"{name} {json.dumps({**cfg, 'mod': mods})} fit_seed={fit_seed} TSTR/TRTR {np.mean(ratios):.4f} "
        line += f"+- {np.std(ratios, ddof=1):.4f} {np.round(ratios, 4).tolist()}"
        if shares:
            line += f" DCR {np.mean(shares):.4f} {np.round(shares, 3).tolist()}"
        info = model.train_info_
        print(f"{line} fit {fit_cpu:.1f} CPU s, best epoch {info.get('best_epoch')}/{info.get('epochs')}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
