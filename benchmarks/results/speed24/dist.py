"""python dist.py LABEL SEED...: sample 100,000 rows of ames and flights per seed to /tmp/speed24/dist_LABEL_NAME_SEED.pkl;
python dist.py compare: per-column distances base1-base2 (same code, other seed) against base1-new3."""
import sys, numpy as np, pandas as pd
if sys.argv[1] != "compare":
    import torch; torch.set_num_threads(1)
    import twinforge
    for name in ("ames", "flights"):
        m = twinforge.load(f"/tmp/ar22/models/{name}")
        for s in sys.argv[2:]:
            m.sample(100_000, seed=int(s), workers=1).to_pickle(f"/tmp/speed24/dist_{sys.argv[1]}_{name}_{s}.pkl")
    sys.exit()
def dist(a, b):
    if a.dtype.kind in "fi" and a.nunique() > 30:
        x, y = np.sort(a.dropna().to_numpy()), np.sort(b.dropna().to_numpy())
        grid = np.concatenate([x, y])
        ks = np.abs(np.searchsorted(x, grid, "right") / max(len(x), 1) - np.searchsorted(y, grid, "right") / max(len(y), 1)).max()
        return max(ks, abs(a.isna().mean() - b.isna().mean()))
    pa, pb = a.astype(str).value_counts(normalize=True), b.astype(str).value_counts(normalize=True)
    return 0.5 * pa.sub(pb, fill_value=0).abs().sum()
for name in ("ames", "flights"):
    b1, b2, n3 = (pd.read_pickle(f"/tmp/speed24/dist_{l}_{name}_{s}.pkl") for l, s in (("base", 1), ("base", 2), ("new", 3)))
    d0 = np.array([dist(b1[c], b2[c]) for c in b1.columns]); d1 = np.array([dist(b1[c], n3[c]) for c in b1.columns])
    num = [c for c in b1.columns if b1[c].dtype.kind in "fi"]
    c0 = np.nanmax(np.abs(b1[num].corr().to_numpy() - b2[num].corr().to_numpy())); c1 = np.nanmax(np.abs(b1[num].corr().to_numpy() - n3[num].corr().to_numpy()))
    print(f"{name}: per-column distance base-base mean {d0.mean():.4f} max {d0.max():.4f} | base-new mean {d1.mean():.4f} max {d1.max():.4f} (worst {b1.columns[d1.argmax()]}) | max corr diff base-base {c0:.4f} base-new {c1:.4f}")
