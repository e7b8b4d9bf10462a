"""A/B in one process: python ab.py LABEL (PYTHONPATH picks the code). ames and flights loaded from /tmp/ar22/models;
the bench's draw (1,000-row warm-up, then 100,000 rows, default workers) first, then rounds of workers 2 and 1."""
import gc, resource, sys, time
import twinforge
label = sys.argv[1]
N = 100_000
res = {}
def timed(m, name, workers=None, seed=0):
    gc.collect()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t, c = time.perf_counter(), time.process_time()
    m.sample(N, seed=seed, workers=workers)
    w, cp = time.perf_counter() - t, time.process_time() - c
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    res.setdefault((name, workers), []).append((N / w, N / cp))
    print(f"{label:6s} {name:14s} w={workers}: wall {N / w:8,.0f}  per CPU s {N / cp:8,.0f}  cores {cp / w:4.2f}  "
          f"minflt {r1.ru_minflt - r0.ru_minflt:7d}", flush=True)
models = {k: twinforge.load(f"/tmp/ar22/models/{k}") for k in ("ames", "flights")}
print(label, twinforge.__file__, flush=True)
for k, m in models.items():
    m.sample(1000, seed=0)
    timed(m, k + " bench")
for r in range(2):
    for w in (2, 1) if r % 2 == 0 else (1, 2):
        for k, m in models.items():
            timed(m, k, w, seed=r + 1)
for (name, w), v in res.items():
    print(f"SUMMARY {label} {name} w={w}: best wall {max(a for a, _ in v):,.0f}  best per CPU s {max(b for _, b in v):,.0f}  "
          f"all {[round(b) for _, b in v]}")
