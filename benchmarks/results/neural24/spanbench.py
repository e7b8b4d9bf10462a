"""Span cross-entropy variants (fwd+bwd, fp32 raw [500, dim]) on each table's layout; CPU us per call."""
import sys, time
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
import twinforge
from twinforge.models._nn import segment_nll
torch.set_num_threads(1)
D = {"default": "/tmp/lead23/tv", "flights": "/tmp/lead23/tv", "covid": "/tmp/lead22/sides", "planes": "/tmp/lead22/sides", "ames": "/tmp/ddpm22/sides", "churn": "/tmp/lead22/sides"}

def seg_is(logits, segment, n, target):
    b = len(logits)
    top = torch.full((b, n), -torch.inf, dtype=logits.dtype)
    top = top.scatter_reduce(1, segment.expand(b, -1), logits.detach(), "amax")
    top = torch.where(torch.isfinite(top), top, 0.0)
    sums = torch.zeros(b, n, dtype=logits.dtype).index_add(1, segment, torch.exp(logits - top.index_select(1, segment)))
    return torch.log(sums) + top - logits.gather(1, target)

def bench(f, n=60):
    for _ in range(5): f()
    t = time.process_time()
    for _ in range(n): f()
    return (time.process_time() - t) / n * 1e6

for name in sys.argv[1].split(","):
    df = pd.read_csv(f"{D[name]}/{name}/train.csv")
    m = twinforge.create("tvae", seed=0, progress=False, epochs=1).fit(df, twinforge.Metadata.detect(df))
    enc = m.encoding_
    sizes = np.asarray(enc.span_sizes_); starts_m = np.asarray(enc.span_starts_)
    g = torch.Generator().manual_seed(0)
    raw0 = torch.randn(500, enc.dim_, generator=g) * 3
    codes = torch.stack([torch.randint(0, int(k), (500,), generator=g) for k in sizes], 1)
    positions, segment, starts = m._span_layout(torch.device("cpu"))
    grad_ref = None
    def v0():
        raw = raw0.clone().requires_grad_()
        l = segment_nll(raw[:, positions], segment, enc.n_spans, codes + starts).sum(); l.backward(); return l, raw.grad
    def v1():
        raw = raw0.clone().requires_grad_()
        l = seg_is(raw.index_select(1, positions), segment, enc.n_spans, codes + starts).sum(); l.backward(); return l, raw.grad
    def hybrid(th):
        wide = [s for s in range(len(sizes)) if sizes[s] >= th]
        narrow = [s for s in range(len(sizes)) if sizes[s] < th]
        pos = torch.as_tensor(np.concatenate([np.arange(starts_m[s], starts_m[s] + sizes[s]) for s in narrow]) if narrow else np.zeros(0, dtype=np.int64))
        seg = torch.as_tensor(np.repeat(np.arange(len(narrow)), sizes[narrow]) if narrow else np.zeros(0, dtype=np.int64))
        st = torch.as_tensor(np.concatenate([[0], np.cumsum(sizes[narrow])[:-1]]) if narrow else np.zeros(0, dtype=np.int64))
        nidx = torch.as_tensor(narrow, dtype=torch.long)
        def f():
            raw = raw0.clone().requires_grad_()
            l = raw.new_zeros(())
            if narrow:
                l = l + seg_is(raw.index_select(1, pos), seg, len(narrow), codes.index_select(1, nidx) + st).sum()
            for s in wide:
                a, k = int(starts_m[s]), int(sizes[s])
                l = l + F.cross_entropy(raw[:, a:a + k], codes[:, s], reduction="sum")
            l.backward(); return l, raw.grad
        return f
    def padded(th):  # narrow spans padded to the widest narrow, one log_softmax; wide by slices
        wide = [s for s in range(len(sizes)) if sizes[s] >= th]
        narrow = [s for s in range(len(sizes)) if sizes[s] < th]
        w = int(sizes[narrow].max())
        idx = np.zeros((len(narrow), w), dtype=np.int64); valid = np.zeros((len(narrow), w), dtype=bool)
        for i, s in enumerate(narrow):
            idx[i, :sizes[s]] = np.arange(starts_m[s], starts_m[s] + sizes[s]); valid[i, :sizes[s]] = True
        idx_t = torch.as_tensor(idx.ravel()); pad = torch.where(torch.as_tensor(valid), 0.0, -torch.inf)
        nidx = torch.as_tensor(narrow, dtype=torch.long)
        def f():
            raw = raw0.clone().requires_grad_()
            lg = raw.index_select(1, idx_t).view(500, len(narrow), w) + pad
            l = -(torch.log_softmax(lg, 2).gather(2, codes.index_select(1, nidx)[:, :, None])).sum()
            for s in wide:
                a, k = int(starts_m[s]), int(sizes[s])
                l = l + F.cross_entropy(raw[:, a:a + k], codes[:, s], reduction="sum")
            l.backward(); return l, raw.grad
        return f
    ref_l, ref_g = v0()
    out = [f"{name} dim {enc.dim_}"]
    for label, f in [("v0", v0), ("v1_is", v1), ("hyb8", hybrid(8)), ("hyb16", hybrid(16)), ("hyb32", hybrid(32)), ("hyb64", hybrid(64)), ("pad32", padded(32))]:
        l, gr = f()
        eq = "same" if torch.equal(gr, ref_g) and torch.equal(l, ref_l) else f"dl={float(l - ref_l):.2e} dg={float((gr - ref_g).abs().max()):.1e}"
        out.append(f"{label} {bench(f):.0f}us ({eq})")
    print(" | ".join(out), flush=True)
