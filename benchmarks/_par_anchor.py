"""SDV's PARSynthesizer on a long table, for bench_twins.py. Runs in the SDV anchor venv ONLY.

    ANCHOR/bin/python benchmarks/_par_anchor.py --data CSV --entity-key ID --time-key T --context label \\
        --drop split --entities 80 --seed 0 --synthetic-out par.csv --result-out par.json [--epochs N]

Fits ``PARSynthesizer`` (SDV's defaults unless ``--epochs``) with the entity key as sequence key, the time as
sequence index and ``--context`` columns as context (static) columns; times the fit and the sampling of
``--entities`` sequences; writes the sample as CSV and one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.simplefilter("ignore")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--entity-key", required=True)
    p.add_argument("--time-key", required=True)
    p.add_argument("--context", default="")
    p.add_argument("--drop", default="")
    p.add_argument("--entities", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--synthetic-out", required=True)
    p.add_argument("--result-out", required=True)
    a = p.parse_args()

    import numpy as np
    import pandas as pd
    import sdv
    import torch
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    df = pd.read_csv(a.data)
    drop = [c for c in a.drop.split(",") if c]
    df = df.drop(columns=drop)
    context = [c for c in a.context.split(",") if c]
    table = "t"
    metadata = Metadata.detect_from_dataframes({table: df})
    metadata.update_column(a.entity_key, table_name=table, sdtype="id")
    metadata.set_sequence_key(a.entity_key, table_name=table)
    metadata.update_column(a.time_key, table_name=table, sdtype="numerical")
    metadata.set_sequence_index(a.time_key, table_name=table)
    np.random.seed(a.seed)  # PAR draws from numpy's and torch's global generators
    torch.manual_seed(a.seed)
    params = {"context_columns": context, "verbose": False, "cuda": False}
    if a.epochs:
        params["epochs"] = a.epochs
    model = PARSynthesizer(metadata, **params)
    start = time.perf_counter()
    model.fit({table: df})  # SDV 2 takes a dict of tables
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    out = model.sample_sequences(num_sequences=a.entities)
    out = out[table] if isinstance(out, dict) else out
    sample_seconds = time.perf_counter() - start
    out.to_csv(a.synthetic_out, index=False)
    result = {
        "side": "sdv_par",
        "versions": {"sdv": sdv.__version__},
        "params": {k: v for k, v in params.items() if k != "verbose"},
        "fit_seconds": round(fit_seconds, 2),
        "sample_seconds": round(sample_seconds, 2),
        "rows": len(out),
    }
    with open(a.result_out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
