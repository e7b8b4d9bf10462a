"""Calm (both slots) in-process: ames fitted here (bench split, as bench_auto) vs its saved/loaded copy
(/tmp/speed23/models/ames, fitted the same way); per draw of 100,000 rows: wall, CPU, minor faults, context switches."""
import ctypes, gc, resource, sys, time
from pathlib import Path
import pandas as pd, torch
sys.path.insert(0, "/work/wt-qa/benchmarks")
from bench_auto import DATASETS
import twinforge

name = sys.argv[1] if len(sys.argv) > 1 else "ames"
real = pd.read_csv(Path("/work/shared/datasets") / DATASETS[name])
order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    df.to_csv(Path(tmp) / "t.csv", index=False); df = pd.read_csv(Path(tmp) / "t.csv")
md = twinforge.Metadata.detect(df)
N = 100_000

def timed(m, label, workers=None, seed=0):
    gc.collect()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t, c = time.perf_counter(), time.process_time()
    m.sample(N, seed=seed, workers=workers)
    w, cp = time.perf_counter() - t, time.process_time() - c
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{label:28s} w={workers}: wall {N / w:8,.0f}  per CPU s {N / cp:8,.0f}  cores {cp / w:4.2f}  "
          f"sys {r1.ru_stime - r0.ru_stime:5.2f}s  minflt {r1.ru_minflt - r0.ru_minflt:7d}  "
          f"vcsw {r1.ru_nvcsw - r0.ru_nvcsw:6d}  ivcsw {r1.ru_nivcsw - r0.ru_nivcsw:5d}", flush=True)

t = time.process_time()
m = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(df, md)
print(name, "fit CPU", round(time.process_time() - t, 1), flush=True)
m.sample(1000, seed=0)
timed(m, "fresh: the bench's draw")
l = twinforge.load(f"/tmp/speed23/models/{name}")
l.sample(1000, seed=0)
timed(l, "loaded: first parallel draw")
for r in range(3):
    for lab, x in (("fresh", m), ("loaded", l)) if r % 2 == 0 else (("loaded", l), ("fresh", m)):
        timed(x, lab, 2, seed=r + 1)
    for lab, x in (("fresh", m), ("loaded", l)) if r % 2 == 0 else (("loaded", l), ("fresh", m)):
        timed(x, lab, 1, seed=r + 1)
libc = ctypes.CDLL("libc.so.6")
print("mallopt mmap threshold 256 MB, trim threshold 1 GB:", libc.mallopt(-3, 256 << 20), libc.mallopt(-1, 1 << 30))
for r in range(2):
    timed(m, "fresh mallopt", 2, seed=r + 1)
    timed(l, "loaded mallopt", 2, seed=r + 1)
    timed(m, "fresh mallopt", 1, seed=r + 1)
