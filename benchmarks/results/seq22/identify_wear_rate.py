"""How visible is a turbine's hidden wear rate in its channels? (session 22, issue 7)

On the bench's fleet (80 units x 100 steps, seed 0): the correlation over units between log wear_rate and
- the OLS slope of load-normalised vibration, vibration / (0.4 + 0.6 load) on running steps (what wear drives),
  over the first 25 steps and over the first 90 (the training steps a population fit sees of an entity);
- the same slope of raw vibration;
- the true wear's mean growth per running step (the simulator's state: the rate is real and large);
and whether a 25-step history's slope predicts the next 25 steps' change in level (what a twin that extrapolates a
trend would need). Run: .venv/bin/python benchmarks/results/seq22/identify_wear_rate.py (a few seconds).
"""

import numpy as np
import pandas as pd

import twinforge.simulate as sim

f = sim.turbines(n_units=80, n_steps=100, seed=0)
ev = f.events.merge(f.static, on="unit_id")
hidden = f.hidden.set_index("unit_id")
rows = []
for u, g in ev.groupby("unit_id"):
    load = (g.power_kw / g.rated_power_kw).clip(0, 1)
    run = load > 0.05
    ratio = g.vibration / (0.4 + 0.6 * load)
    w = f.states[f.states.unit_id == u].wear.to_numpy()
    dw = np.diff(w)
    dw = dw[(dw > 0) & (dw < 0.05)]
    row = {"log rate": np.log(hidden.wear_rate[u]), "true wear growth": np.log(dw.mean())}
    for k in (25, 90):
        m = run & (g.t < k)
        row[f"slope ratio {k}"] = np.polyfit(g.t[m], ratio[m], 1)[0] if m.sum() > 3 else np.nan
        row[f"slope raw {k}"] = np.polyfit(g.t[g.t < k], g.vibration[g.t < k], 1)[0]
    later = run & (g.t >= 25) & (g.t < 50)
    early = run & (g.t < 25)
    row["level change 26-50"] = ratio[later].mean() - ratio[early].mean() if later.any() and early.any() else np.nan
    row["failure or maintenance 26-50"] = bool(
        (g.failure[(g.t >= 25) & (g.t < 50)].sum() + g.maintenance[(g.t >= 25) & (g.t < 50)].sum()) > 0
    )
    rows.append(row)
d = pd.DataFrame(rows)
corr = lambda a, b, x=d: float(x[a].corr(x[b]))  # noqa: E731 (pairwise complete: a unit idle for 25 steps has no slope)
for c in ("slope ratio 25", "slope ratio 90", "slope raw 25", "slope raw 90", "true wear growth"):
    print(f"corr(log wear_rate, {c}) = {corr('log rate', c):+.2f}")
print(f"corr(25-step slope of the ratio, its level change 26-50 vs 1-25) = {corr('slope ratio 25', 'level change 26-50'):+.2f}")
quiet = d[~d["failure or maintenance 26-50"]]
print(
    f"  on the {len(quiet)} units without a failure or maintenance in steps 26-50: "
    f"{corr('slope ratio 25', 'level change 26-50', quiet):+.2f}; log wear_rate vs that change: "
    f"{corr('log rate', 'level change 26-50', quiet):+.2f}"
)
