"""One training step's loss and every parameter gradient, main's _loss vs the branch's, bit for bit."""
import sys, copy
import numpy as np, pandas as pd, torch
import twinforge
from twinforge.models._nn import training_precision
from twinforge.models._tabular_nn import without
from twinforge.models.vae import with_residuals
sys.path.insert(0, "/tmp/neural24/src_base/src")
import importlib.util
spec = importlib.util.spec_from_file_location("vae_main", "/tmp/neural24/src_base/src/twinforge/models/vae.py")
D = {"default": "/tmp/lead23/tv", "churn": "/tmp/lead22/sides", "ames": "/tmp/ddpm22/sides", "weather": "/tmp/ddpm22/sides"}
for name in sys.argv[1].split(","):
    df = pd.read_csv(f"{D[name]}/{name}/train.csv")
    m = twinforge.create("tvae", seed=0, progress=False, epochs=3).fit(df, twinforge.Metadata.detect(df))
    enc = m.encoding_
    arrays = with_residuals(without(m.transformer_.transform(df), m.keylike_), m.residuals_)
    codes, scalars = enc.encode(arrays, None)
    tensors = m._tensors(codes, scalars)
    params = list(m.encoder_.parameters()) + list(m.decoder_.parameters())
    def old_loss(x, codes, scalars, present):
        mu, logvar = (h.float() for h in m.encoder_(x))
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        raw = m.decoder_(z).float()
        positions = torch.as_tensor(np.concatenate([np.arange(a, a + k) for a, k in zip(enc.span_starts_, enc.span_sizes_)]))
        segment = torch.as_tensor(np.repeat(np.arange(enc.n_spans), enc.span_sizes_))
        starts = torch.as_tensor(np.concatenate([[0], np.cumsum(enc.span_sizes_)[:-1]]))
        from twinforge.models._nn import segment_nll
        rec = raw.new_zeros(())
        rec = rec + segment_nll(raw[:, positions], segment, enc.n_spans, codes + starts).sum()
        sigma = m.decoder_.sigma()
        mean = torch.tanh(raw[:, torch.as_tensor(enc.scalar_pos_)])
        nll = 0.5 * ((scalars - mean) / sigma) ** 2 + sigma.log()
        rec = rec + (nll * present).sum()
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
        return (float(m.loss_factor) * rec + kl) / len(x)
    same = True
    for trial in range(5):
        rows = torch.randperm(len(codes), generator=torch.Generator().manual_seed(trial))[:500]
        batch = [t.index_select(0, rows) for t in tensors]
        out = []
        for f in (old_loss, m._loss):
            torch.manual_seed(trial)
            with training_precision(torch.device("cpu")):
                loss = f(*batch)
            grads = torch.autograd.grad(loss, params)
            out.append((loss, grads))
        (l0, g0), (l1, g1) = out
        eq = torch.equal(l0, l1) and all(torch.equal(a, b) for a, b in zip(g0, g1))
        if not eq:
            same = False
            print(name, trial, "DIFF loss", float(l0 - l1), [float((a - b).abs().max()) for a, b in zip(g0, g1)])
    print(name, "bit-identical" if same else "differs", flush=True)
