"""Before/after _keep_heap, bench condition: python ab23.py before|after. ames fitted in this process on the bench's
training rows (as bench_auto), flights loaded (/tmp/ar22/models/flights); the bench's draw (1,000-row warm-up, then
100,000 rows, default workers) first, then 3 rounds of workers 2 and 1. 'before' disables _keep_heap."""
import gc, resource, sys, time
from pathlib import Path
import pandas as pd
sys.path.insert(0, "/work/wt-qa/benchmarks")
from bench_auto import DATASETS
import twinforge
import twinforge.models.autoregressive as ar

mode = sys.argv[1]
if mode == "before":
    ar._HEAP_KEPT.append(True)
real = pd.read_csv(Path("/work/shared/datasets") / DATASETS["ames"])
order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    df.to_csv(Path(tmp) / "t.csv", index=False); df = pd.read_csv(Path(tmp) / "t.csv")
N = 100_000
res = {}

def timed(m, label, workers=None, seed=0):
    gc.collect()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t, c = time.perf_counter(), time.process_time()
    m.sample(N, seed=seed, workers=workers)
    w, cp = time.perf_counter() - t, time.process_time() - c
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    res.setdefault((label, workers), []).append((N / w, N / cp))
    print(f"{mode:6s} {label:14s} w={workers}: wall {N / w:8,.0f}  per CPU s {N / cp:8,.0f}  cores {cp / w:4.2f}  "
          f"sys {r1.ru_stime - r0.ru_stime:5.2f}s  minflt {r1.ru_minflt - r0.ru_minflt:7d}", flush=True)

t = time.process_time()
ames = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(df, twinforge.Metadata.detect(df))
print(mode, "ames fit CPU", round(time.process_time() - t, 1), flush=True)
ames.sample(1000, seed=0)
timed(ames, "ames bench")
flights = twinforge.load("/tmp/ar22/models/flights")
flights.sample(1000, seed=0)
timed(flights, "flights bench")
for r in range(2):
    for w in (2, 1) if r % 2 == 0 else (1, 2):
        timed(ames, "ames", w, seed=r + 1)
        timed(flights, "flights", w, seed=r + 1)
for (label, w), v in res.items():
    print(f"SUMMARY {mode} {label} w={w}: best wall {max(a for a, _ in v):,.0f}  best per CPU s {max(b for _, b in v):,.0f}  "
          f"all {[round(a) for a, _ in v]}")
