"""One thread, rows per CPU second of _sample (best of 3 x 49,152 rows), per model: python t1.py LABEL."""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
import twinforge
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(2000, np.random.default_rng(0), workers=1)
    b = []
    for r in range(3):
        t = time.process_time(); m._sample(49152, np.random.default_rng(r), workers=1); b.append(49152 / (time.process_time() - t))
    print(f"{sys.argv[1]:8s} {name:8s} best {max(b):8,.0f} rows/CPU s  all {[round(x) for x in b]}  {twinforge.__file__}", flush=True)
