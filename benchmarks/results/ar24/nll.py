"""Per-column NLL given all other columns, on fitted rows vs scored rows (over- or under-fitting?)."""
import sys
from pathlib import Path
import numpy as np, pandas as pd, torch
import twinforge.models.autoregressive as ar
from twinforge.models.base import load
d, lab = Path(sys.argv[1]), sys.argv[2]
targets = sys.argv[3].split(",") if len(sys.argv) > 3 else ["Sale_Price", "Gr_Liv_Area", "Garage_Area", "Year_Built", "Total_Bsmt_SF", "Lot_Area"]
m = load(d / f"model_{lab}")
learned = list(m.transformer_.columns_)
fit = pd.read_csv(d / "fit.csv")[learned]; sc = pd.read_csv(d / "scored.csv")[learned]
for c in learned:
    if sc[c].dtype == object:
        sc = sc[sc[c].isna() | sc[c].isin(set(fit[c].dropna()))]
names = [c["column"] for c in m.columns_]
lay = m.layout_
def nll(df):
    arrays = m.transformer_.transform(df) if hasattr(m.transformer_, "transform") else None
    tokens = ar._training_matrix(m.columns_, arrays, np.random.default_rng(0))
    t = torch.as_tensor(tokens)
    dd = len(m.columns_)
    out = {}
    with torch.inference_mode():
        for name in targets:
            j = names.index(name)
            known = torch.ones(len(t), dd, dtype=torch.bool); known[:, j] = False
            v = ar._column_nll(m.net_, lay, t, known)[:, j].numpy()
            out[name] = v.mean()
        known = torch.zeros(len(t), dd, dtype=torch.bool)
        out["(all cols, none known) mean"] = ar._column_nll(m.net_, lay, t, known).numpy().mean()
    return out
a, b = nll(fit), nll(sc)
for k in a:
    print(f"{k:30s} fit {a[k]:.3f}  scored {b[k]:.3f}")
