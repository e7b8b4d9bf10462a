"""Give fit seed 1's flights model (whose _choose_references dropped arr_delay's reference) fit seed 0's arr_delay
reference (same fitted rows; the residual is fitted on them), resample 3 seeds, save as LABEL."""
import sys
from pathlib import Path
import pandas as pd
from twinforge.models.base import load
d = Path("/tmp/ar24/flights")
m0, m1 = load(d / "model_base0"), load(d / "model_base1")
c0 = next(c for c in m0.columns_ if c["column"] == "arr_delay")
c1 = next(c for c in m1.columns_ if c["column"] == "arr_delay")
assert c0["type"] == c1["type"] == "binned" and len(c0["quantiles"]) == len(c1["quantiles"])
for k in ("reference", "slope", "residuals"):
    c1[k] = c0[k]
print("reference", c1["reference"], c1["slope"])
n = len(pd.read_csv(d / "fit.csv"))
for s in (0, 1, 2):
    m1.sample(n, seed=s, workers=1).to_parquet(d / f"b1ref_s{s}.parquet", index=False)
