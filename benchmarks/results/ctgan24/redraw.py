"""Prototype: rows regenerated conditioned on their rarest discrete category. argv: model_dir label [max_share]
Writes split/{label}_rr{tag}_s{k}.parquet for sampling seeds 0,1,2."""
import sys, numpy as np, pandas as pd, torch, twinforge
torch.set_num_threads(1)
mdir, label = sys.argv[1], sys.argv[2]
max_share = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
tag = "all" if max_share >= 1 else f"{int(max_share*100)}"
out = "/tmp/ctgan24/split"
m = twinforge.load(mdir)
tr = pd.read_csv("/tmp/ctgan23/split/covid/train.csv")
cols = [c["name"] for c in m.encoding_.columns_ if c["type"] == "discrete" and tr[c["name"]].nunique(dropna=False) >= 2]
share = {c: tr[c].astype(str).value_counts(normalize=True) for c in cols}
n = len(tr)
for s in (0, 1, 2):
    base = m.sample(n, seed=s)
    sh = np.column_stack([base[c].astype(str).map(share[c]).fillna(0).to_numpy() for c in cols])
    j = sh.argmin(1); low = sh.min(1)
    redo = low < max_share
    rows = base.copy()
    k = 0
    for ci, c in enumerate(cols):
        sel = redo & (j == ci)
        if not sel.any(): continue
        vals = base.loc[sel, c]
        for v, idx in vals.groupby(vals.astype(str)).groups.items():
            val = vals.loc[idx[0]]
            val = None if (val is None or (isinstance(val, float) and np.isnan(val))) else val
            new = m.sample(len(idx), seed=10_000 * (s + 1) + k, conditions={c: val}); k += 1
            rows.loc[idx, :] = new.to_numpy()
    rows = rows.astype(base.dtypes.to_dict())
    rows.to_parquet(f"{out}/{label}_rr{tag}_s{s}.parquet")
    print(f"seed {s}: redrawn {redo.sum()} rows in {k} groups; by column", {c: int((redo & (j == i)).sum()) for i, c in enumerate(cols)}, flush=True)
