import numpy as np
from twinforge.models.autoregressive import _exact_relations, _trimmed_fit
rng = np.random.default_rng(0); n = 3000
a = np.round(rng.gamma(2, 50, n), 2); b = np.round(rng.normal(0, 30, n), 2); c = a + b
bad = rng.random(n) < 0.005; c[bad] += np.round(rng.normal(0, 20, bad.sum()), 2)
for name, x, f in [("c", c, {(0,False): a, (1,False): b}), ("a", a, {(1,False): b, (2,False): c})]:
    tol = 1e-6*np.nanstd(x)
    print(name, "screen", _trimmed_fit(x[::6], [f[k][::6] for k in f], tol, None)[0], "full", _trimmed_fit(x, list(f.values()), tol, None)[0], len(_exact_relations(x, f, None)))
for v in (a, b, c):
    _, k = np.unique(v, return_counts=True); p = k / k.sum(); print(-(p*np.log(p)).sum())
