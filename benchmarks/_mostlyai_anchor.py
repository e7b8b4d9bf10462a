"""MOSTLY AI's engine (TabularARGN) as one side of bench_auto.py. Runs in the anchor venv ONLY.

    ~/.cache/anchors/mostlyai/bin/python benchmarks/_mostlyai_anchor.py [--max-minutes M] --data CSV \\
        --sample-rows N --seed 0 --synthetic-out mostlyai.parquet --result-out mostlyai.json

Fits ``TabularARGN`` with its defaults (flexible generation, value protection, early stopping) on the table as
read by ``_measure.load_table``, measured as described in ``_measure.py``. ``--max-minutes`` passes a training
time budget (``max_training_time``, minutes).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings

warnings.simplefilter("ignore")
logging.disable(logging.WARNING)


def main(argv: list[str]) -> None:
    import mostlyai.engine
    import torch
    from _measure import Side, run_side
    from mostlyai.engine import TabularARGN

    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--max-minutes", type=float, default=None)
    chosen, argv = pick.parse_known_args(argv)
    budget = {"max_training_time": chosen.max_minutes} if chosen.max_minutes else {}
    workspace = tempfile.TemporaryDirectory(prefix="mostlyai_")

    def fit(df, metadata, seed):
        model = TabularARGN(workspace_dir=workspace.name, random_state=seed, device="cpu", **budget)
        model.fit(df)
        return model

    def sample(model, n, seed):
        return model.sample(n_samples=n)

    side = Side(
        name="mostlyai",
        versions={"mostlyai-engine": getattr(mostlyai.engine, "__version__", "2.7.3"), "torch": torch.__version__},
        detect=lambda df: None,
        fit=fit,
        sample=sample,
        metadata_dict=lambda metadata: {},
        not_learned=lambda metadata: {},
    )
    run_side(side, argv)
    workspace.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
