"""arfpy (adversarial random forests, Watson et al., AISTATS 2023) as one side of bench_auto.py. Anchor venv ONLY.

    ~/.cache/anchors/arf/bin/python benchmarks/_arf_anchor.py --data CSV --sample-rows N --seed 0 \\
        --synthetic-out arf.parquet --result-out arf.json

arfpy takes no missing values: a text column's missing value becomes a level of its own, a numeric column's
gets a missing-flag column and the median; both are undone after sampling. Integer columns are rounded back.
"""

from __future__ import annotations

import sys
import warnings

warnings.simplefilter("ignore")

_NA = "__missing__"


def main(argv: list[str]) -> None:
    import arfpy
    import numpy as np
    import pandas as pd
    from _measure import Side, run_side
    from arfpy import arf

    def encode(df):
        out, plan = pd.DataFrame(index=df.index), {}
        for col in df.columns:
            s = df[col]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                plan[col] = ("num", str(s.dtype), bool(s.isna().any()))
                out[col] = s.fillna(s.median()).astype(float)
                if s.isna().any():
                    out[f"{col}{_NA}"] = s.isna().map({True: "y", False: "n"}).astype("category")
            else:
                plan[col] = ("cat", str(s.dtype), False)
                out[col] = s.astype(object).where(s.notna(), _NA).astype(str).astype("category")
        return out, plan

    def decode(syn, plan):
        out = {}
        for col, (kind, dtype, has_na) in plan.items():
            s = syn[col]
            if kind == "num":
                s = s.astype(float)
                if dtype.startswith("int"):
                    s = s.round()
                if has_na:
                    s = s.where(syn[f"{col}{_NA}"].astype(str) != "y")
                out[col] = s.astype("Int64" if dtype.startswith("int") and has_na else dtype)
            else:
                s = s.astype(str).replace(_NA, np.nan)
                out[col] = s.map({"True": True, "False": False}) if dtype == "bool" else s
        return pd.DataFrame(out)

    def fit(df, metadata, seed):
        np.random.seed(seed)  # arfpy draws from numpy's global generator
        x, plan = encode(df)
        # arfpy looks its column flags up both by position and by name, which pandas 3 only allows when the names
        # are the positions: integer column names, restored after sampling
        names = list(x.columns)
        model = arf.arf(x=x.reset_index(drop=True).set_axis(range(len(names)), axis=1), verbose=False)
        model.forde()
        return model, plan, names

    def sample(fitted, n, seed):
        model, plan, names = fitted
        np.random.seed(seed)
        return decode(model.forge(n=n).set_axis(names, axis=1), plan)

    side = Side(
        name="arf",
        versions={"arfpy": getattr(arfpy, "__version__", "0.1.1")},
        detect=lambda df: None,
        fit=fit,
        sample=sample,
        metadata_dict=lambda metadata: {},
        not_learned=lambda metadata: {},
    )
    run_side(side, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
