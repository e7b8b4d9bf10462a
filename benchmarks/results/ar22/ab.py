"""Same-process A/B of sampling rates, workers=2 and 1, alternating, best of R draws of 100,000 rows.
python ab.py LABEL=MODEL_DIR[:maxpasses] ... [--reps R]. ':N' regroups the loaded model with _MAX_PASSES=N."""
import sys, time, os
import numpy as np
import twinforge
import twinforge.models.autoregressive as ar
reps = int(dict(zip(sys.argv, sys.argv[1:])).get("--reps", 3))
sides = []
for a in sys.argv[1:]:
    if "=" not in a: continue
    label, path = a.split("=", 1)
    path, _, cap = path.partition(":")
    m = twinforge.load(path)
    if cap:
        ar._MAX_PASSES = int(cap); m._group_columns(np.random.default_rng(0)); ar._MAX_PASSES = 16
    m.sample(2000, seed=0)
    sides.append((label, m))
res = {(l, w): [] for l, _ in sides for w in (1, 2)}
n = 100_000
for r in range(reps):
    for label, m in (sides if r % 2 == 0 else sides[::-1]):
        for w in ((2, 1) if r % 2 == 0 else (1, 2)):
            t = time.perf_counter(); m.sample(n, seed=r, workers=w); res[(label, w)].append(n / (time.perf_counter() - t))
for label, m in sides:
    print(f"{label}: width {m.config_['width']} passes {len(m.groups_)}; workers=2 best {max(res[(label, 2)]):,.0f} "
          f"all {[round(x) for x in res[(label, 2)]]}; workers=1 best {max(res[(label, 1)]):,.0f} all {[round(x) for x in res[(label, 1)]]}", flush=True)
