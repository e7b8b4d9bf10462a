"""Bench condition vs loaded model: fit NAME on the bench's training rows (as bench_auto), time draws in-process
(warm-up 1,000 then 100,000 rows, as _measure.py), then bisect: flush denormals, requires_grad off, swap net /
columns with the saved-and-loaded copy. python repro.py NAME [--fit-only|--load DIR]"""
import gc, sys, time, copy
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, "/work/wt-qa/benchmarks")
from bench_auto import DATASETS
import twinforge

name = sys.argv[1]
out = Path(f"/tmp/speed23/models/{name}")
real = pd.read_csv(Path("/work/shared/datasets") / DATASETS[name])
order = pd.Series(range(len(real))).sample(frac=1.0, random_state=0).to_numpy()
df = real.iloc[order[round(len(real) * 0.2):]].reset_index(drop=True)
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    df.to_csv(Path(tmp) / "t.csv", index=False); df = pd.read_csv(Path(tmp) / "t.csv")
md = twinforge.Metadata.detect(df)
N = 100_000

def timed(m, label, workers=None, reps=1, seed=0):
    res = []
    for r in range(reps):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        m.sample(N, seed=seed + r, workers=workers)
        w, cp = time.perf_counter() - t, time.process_time() - c
        res.append((N / w, N / cp))
    best = max(res)
    print(f"{label:40s} w={workers}: wall {best[0]:9,.0f}  per CPU s {max(r[1] for r in res):9,.0f}  all "
          f"{[(round(a), round(b)) for a, b in res]}", flush=True)

def denormals(net):
    tiny = torch.finfo(torch.float32).tiny
    return sum(int(((p != 0) & (p.abs() < tiny)).sum()) for p in net.parameters())

t = time.process_time()
m = twinforge.create("auto", seed=0, progress=False, max_minutes=6).fit(df, md)
print(name, "fit CPU", round(time.process_time() - t, 1), "passes", len(m.groups_), "threads", torch.get_num_threads(), flush=True)
m.sample(1000, seed=0)  # the bench's warm-up
timed(m, "fresh, bench draw")
timed(m, "fresh", 1, 2)
m.save(out, overwrite=True)
l = twinforge.load(out)
l.sample(1000, seed=0)
timed(l, "loaded", 1, 2)
timed(l, "loaded", None, 1)
timed(m, "fresh again", 1, 1)
print("denormals fresh", denormals(m.net_), "loaded", denormals(l.net_))
print("bf16 fresh", denormals(m._bf16_net) if m._bf16_net is not None else None)
print("requires_grad fresh", any(p.requires_grad for p in m.net_.parameters()), "loaded", any(p.requires_grad for p in l.net_.parameters()))
print("grads fresh", any(p.grad is not None for p in m.net_.parameters()))
print("training flags fresh", m.net_.training, l.net_.training)
print("noncontig fresh", [k for k, p in m.net_.state_dict().items() if not p.is_contiguous()])
# column plan types
for a, b in zip(m.columns_, l.columns_):
    for k in a:
        ta, tb = type(a[k]), type(b.get(k))
        da, db = getattr(a[k], "dtype", None), getattr(b.get(k), "dtype", None)
        if ta is not tb or da != db:
            print("col", a["column"], k, ta.__name__, da, "vs", tb.__name__, db)
# bisect
torch.set_flush_denormal(True); timed(m, "fresh + flush_denormal", 1, 1); torch.set_flush_denormal(False)
cols = m.columns_; m.columns_ = l.columns_; timed(m, "fresh with loaded columns_", 1, 1); m.columns_ = cols
net, bf = m.net_, m._bf16_net; m.net_, m._bf16_net = l.net_, None; timed(m, "fresh with loaded net_", 1, 1); m.net_, m._bf16_net = net, bf
m._bf16_net = None; timed(m, "fresh, bf16 copy rebuilt", 1, 1)
tr = m.transformer_; m.transformer_ = l.transformer_; timed(m, "fresh with loaded transformer_", 1, 1); m.transformer_ = tr
timed(l, "loaded last", 1, 1)
