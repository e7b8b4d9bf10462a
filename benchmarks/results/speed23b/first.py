"""First-draw overhead: python first.py MODE. plain: warm 1,000 rows, then 3 x 100,000 (default workers).
block: also one 16,384-row + one 1,696-row draw on one thread before (the bench's block shapes and heap)."""
import sys, time, resource, numpy as np
import twinforge
mode = sys.argv[1]
m = twinforge.load("/tmp/ar22/models/ames")
m.sample(1000, seed=0)
if mode == "block":  # noqa
    m.sample(16384, seed=5, workers=1); m.sample(1696, seed=6, workers=1)
for r in range(3):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t, c = time.perf_counter(), time.process_time()
    m.sample(100_000, seed=r)
    w, cp = time.perf_counter() - t, time.process_time() - c
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{mode:8s} draw {r}: wall {1e5 / w:8,.0f}  per CPU s {1e5 / cp:8,.0f}  sys {r1.ru_stime - r0.ru_stime:.2f}  minflt {r1.ru_minflt - r0.ru_minflt}", flush=True)
