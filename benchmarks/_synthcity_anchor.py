"""synthcity's ``ddpm`` (TabDDPM) as an anchor side of bench_neural.py. Runs in the synthcity anchor venv ONLY.

synthcity is never installed in the project's venv. Its anchor venv (``~/.cache/anchors/synthcity``) is built
with the project's torch pin, e.g.::

    python3.11 -m venv ~/.cache/anchors/synthcity
    ~/.cache/anchors/synthcity/bin/pip install -c constraints.txt schneiderkamplab-synthcity==0.2.16

(synthcity 0.2.12 itself requires ``torch<2.3``, which cannot install beside the CPU wheel torch 2.13 that
``constraints.txt`` pins; the schneiderkamplab fork 0.2.16 is the same code with newer pins.) Then::

    ANCHOR/bin/python benchmarks/_synthcity_anchor.py --data CSV --sample-rows N --seed 0 \\
        --synthetic-out ddpm.parquet --result-out ddpm.json [--epochs N]

fits the ``ddpm`` plugin with its defaults (``--epochs`` caps its ``n_iter`` to keep a run short; recorded in the
result) and is measured as described in ``_measure.py``. synthcity has no metadata detection of its own: every
column is learned (none is declared id, PII or text), and text/datetime columns are handed over as they are read.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib import metadata as importlib_metadata

warnings.simplefilter("ignore")


def main(argv: list[str]) -> None:
    import numpy as np
    import pandas as pd
    import torch
    from _measure import Side, run_side
    from synthcity.plugins import Plugins
    from synthcity.plugins.core.dataloader import GenericDataLoader

    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--epochs", type=int, default=None, help="ddpm's n_iter (default: synthcity's)")
    chosen, argv = pick.parse_known_args(argv)
    extra = {"n_iter": chosen.epochs} if chosen.epochs else {}
    plugins = Plugins(categories=["generic"])

    def detect(df):
        # datetimes become epoch seconds (synthcity learns numbers and categories); restored after sampling
        kinds = {}
        for name in df.columns:
            if df[name].dtype == object:
                parsed = pd.to_datetime(df[name], errors="coerce", format="mixed")
                if parsed.notna().mean() > 0.9 and df[name].notna().any():
                    kinds[name] = "datetime"
        return {"datetimes": kinds, "columns": list(df.columns), "dtypes": {c: str(df[c].dtype) for c in df}}

    def to_model(df, metadata):
        out = df.copy()
        for name in metadata["datetimes"]:
            out[name] = pd.to_datetime(out[name], errors="coerce", format="mixed").astype("int64") / 1e9
        return out

    def fit(df, metadata, seed):
        np.random.seed(seed)
        torch.manual_seed(seed)
        plugin = plugins.get("ddpm", random_state=seed, **extra)
        plugin.fit(GenericDataLoader(to_model(df, metadata)))
        plugin.metadata_ = metadata
        return plugin

    def sample(plugin, n, seed):
        torch.manual_seed(seed)
        out = plugin.generate(count=n, random_state=seed).dataframe()
        meta = plugin.metadata_
        for name in meta["datetimes"]:
            out[name] = pd.to_datetime(out[name] * 1e9).dt.strftime("%Y-%m-%d %H:%M:%S")
        out = out[meta["columns"]]
        for name, dtype in meta["dtypes"].items():
            if dtype.startswith("int") and out[name].notna().all():
                out[name] = out[name].round().astype(dtype)
            elif dtype == "object" and name not in meta["datetimes"]:
                out[name] = out[name].astype(object)
        return out

    side = Side(
        name="synthcity_ddpm",
        versions={
            "synthcity": importlib_metadata.version("schneiderkamplab-synthcity"),
            "torch": torch.__version__,
            "n_iter": str(chosen.epochs or "default"),
        },
        detect=detect,
        fit=fit,
        sample=sample,
        metadata_dict=lambda metadata: metadata,
        not_learned=lambda metadata: {},
    )
    run_side(side, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
