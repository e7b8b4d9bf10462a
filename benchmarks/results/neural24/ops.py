"""Per-aten-op CPU time in a tvae training step (dispatch-mode timer: op, dtypes, shapes)."""
import sys, time, collections
import numpy as np, pandas as pd, torch
from torch.utils._python_dispatch import TorchDispatchMode
import twinforge
from twinforge.models._nn import Adam, training_precision
from twinforge.models._tabular_nn import without
from twinforge.models.vae import with_residuals

name = sys.argv[1]
df = pd.read_csv(f"/tmp/lead23/tv/{name}/train.csv")
md = twinforge.Metadata.detect(df)
m = twinforge.create("tvae", seed=0, progress=False, epochs=1).fit(df, md)
enc = m.encoding_
print("dim", enc.dim_, "spans", len(enc.span_sizes_), "scalars", enc.n_scalars_, flush=True)
arrays = with_residuals(without(m.transformer_.transform(df), m.keylike_), m.residuals_)
codes, scalars = enc.encode(arrays, None)
tensors = m._tensors(codes, scalars)
vae = torch.nn.ModuleList([m.encoder_, m.decoder_]); vae.train()
opt = Adam(vae.parameters(), 3e-3, weight_decay=1e-5, fused=True)
n = len(codes)
stats = collections.defaultdict(lambda: [0, 0.0])
def desc(a):
    if isinstance(a, torch.Tensor):
        return f"{str(a.dtype).replace('torch.', '')}{list(a.shape)}"
    if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor):
        return f"[{len(a)}T]"
    return ""
class Timer(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        dt = time.perf_counter() - t0
        key = (str(func.overloadpacket.__name__), " ".join(d for d in map(desc, args) if d))
        s = stats[key]; s[0] += 1; s[1] += dt
        return out
def step():
    rows = torch.randint(0, n, (500,))
    with training_precision(torch.device("cpu")):
        loss = m._loss(*(t[rows] for t in tensors))
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(30): step()
N = 200
with Timer():
    t0 = time.perf_counter()
    for _ in range(N): step()
    total = time.perf_counter() - t0
tot_ops = sum(v[1] for v in stats.values())
print(f"step wall with timer {total / N * 1e3:.3f} ms; ops sum {tot_ops / N * 1e3:.3f} ms; ops/step {sum(v[0] for v in stats.values()) / N:.0f}")
for k, v in sorted(stats.items(), key=lambda kv: -kv[1][1])[:45]:
    print(f"{v[1] / N * 1e6:8.1f} us/step {v[0] / N:5.1f}x  {k[0]:28s} {k[1][:90]}")
