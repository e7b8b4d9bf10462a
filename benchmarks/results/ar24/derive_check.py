"""Which derived relations _derivations finds on each bench table's split at _DERIVE_SHARE 0.99 vs 0.98/0.97."""
import sys
sys.path.insert(0, "/work/wt-ar/benchmarks")
import numpy as np
from auto_train_split import split
from bench_auto import DATASETS
import twinforge
import twinforge.models.autoregressive as ar
for name in [n for n in DATASETS if n != "airlines"]:
    fit, _ = split(name)
    meta = twinforge.Metadata.detect(fit)


    from twinforge.transforms import TableTransformer
    t = TableTransformer().fit(fit, meta)
    arrays = t.transform(fit)
    res = {}
    for share in (0.99, 0.98):
        ar._DERIVE_SHARE = share; ar._SCREEN_SHARE = 0.97 if share == 0.99 else 0.96
        cols = [ar._plan(n, a, t.transforms_[n], 32, 500) for n, a in arrays.items()]
        ar._derivations(cols, arrays)
        res[share] = {c["column"]: c["derive"]["reference"] for c in cols if "derive" in c}
    print(name, res, flush=True)
