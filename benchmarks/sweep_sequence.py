"""One sequence-model setting on one bench_twins dataset: fit CPU seconds and the fidelity scores, fast.

Usage, from the repository root (heavy: one CPU slot)::

    /work/heavy .venv/bin/python benchmarks/sweep_sequence.py turbines '{"window": 100}' [FIT_SEED]

The same entity split as ``bench_twins.py`` (its seed 0), a ``sequence`` model fitted in this process with the
given JSON parameters and ``FIT_SEED`` (default 0), five synthetic draws of the train split's size scored as
``bench_twins.py`` does (mean +/- sd over draws). For comparing settings across fit seeds before a full run;
no anchors, no twin benchmark. Prints the scores, the features that alone best tell the real entities from
all draws pooled (univariate AUC, real and synthetic means) and, on the turbines, power / rated power of running
turbines above 13 m/s, mean and 90th percentile, synthetic and real (the power-curve tell).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_twins as B


def main(argv: list[str]) -> None:
    import twinforge

    name, params = argv[0], json.loads(argv[1] if len(argv) > 1 else "{}")
    seed = int(argv[2]) if len(argv) > 2 else 0
    args = B.parse_args(["--datasets-only", name])
    df, ek, tk, static, _ = B.load_dataset(name, args)
    train, holdout = B.split_entities(df, ek, 0)
    n = train[ek].nunique()
    cpu = time.process_time()
    model = twinforge.create("sequence", seed=seed, progress=False, **params)
    model.fit(train, entity_key=ek, time_key=tk, static=static)
    cpu = time.process_time() - cpu
    synthetic = model.sample(entities=5 * n, seed=seed)
    scores = B.draw_scores(train, synthetic, holdout, ek, tk, n, 5, 0)
    t, sd = scores["temporal"], scores["temporal_sd"]
    print(
        f"{name} {json.dumps(params)} fit seed {seed}: fit CPU {cpu:.2f}s, {model.train_info_['epochs']} epochs, "
        f"ACF {t['autocorrelation_error']:.4f}, xcorr {t['cross_correlation_error']:.4f}, "
        f"AUC {t['discriminative_auc']:.4f} +/- {sd['discriminative_auc']:.3f}, "
        f"predictive {t['predictive_ratio']:.3f}, static shapes {t['static_column_shapes']:.3f}, "
        f"length {t['sequence_length']:.3f}; "
        f"telling: {', '.join(f['feature'] for f in t['telling_features'][:3])}"
    )
    telling = _pooled_telling(train, synthetic, ek, tk)
    print(f"pooled telling features (univariate AUC; real mean / synthetic mean): {telling}")
    if name == "turbines":
        print(
            "power / rated above 13 m/s (running): "
            + ", ".join(_power_curve(f, k) for k, f in (("synthetic", synthetic), ("real", train)))
        )


def _pooled_telling(real, synthetic, ek: str, tk: str, top: int = 6) -> str:
    """The features that alone best separate the real entities from all the draws pooled, with both means."""
    import numpy as np

    from twinforge.evaluate import temporal

    data, _ = temporal._prepare(real, synthetic, ek, tk)
    (fr, names), (fs, _) = temporal.entity_features(data, "real"), temporal.entity_features(data, "synthetic")
    x, y = np.vstack([fr, fs]), np.r_[np.zeros(len(fr)), np.ones(len(fs))]
    parts = []
    for f in temporal._telling(x, y, names, top=top):
        j = names.index(f["feature"])
        parts.append(f"{f['feature']} {f['auc']:.2f} ({np.nanmean(fr[:, j]):.3g} / {np.nanmean(fs[:, j]):.3g})")
    return "; ".join(parts)


def _power_curve(frame, label: str) -> str:
    high = frame[(frame["wind_speed"] > 13) & (frame["status"] == "running")]
    r = high["power_kw"] / high["rated_power_kw"]
    return f"{label} mean {r.mean():.3f}, p90 {r.quantile(0.9):.3f} ({len(r)} steps)"


if __name__ == "__main__":
    main(sys.argv[1:])
