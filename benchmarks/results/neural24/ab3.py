"""Same-process A/B of main's and the branch's tvae epoch (14 steps + validation), CPU ms per epoch, alternating."""
import sys, time, copy, importlib.util
import numpy as np, pandas as pd, torch
import twinforge
from twinforge.models._nn import Adam, training_precision, seeded
from twinforge.models._tabular_nn import without
from twinforge.models.vae import with_residuals, _VAE
spec = importlib.util.spec_from_file_location("nn_main", "/tmp/neural24/src_base/src/twinforge/models/_nn.py")
nn_main = importlib.util.module_from_spec(spec); sys.modules["nn_main"] = nn_main; spec.loader.exec_module(nn_main)
D = {"default": "/tmp/lead23/tv", "flights": "/tmp/lead23/tv", "churn": "/tmp/lead22/sides", "covid": "/tmp/lead22/sides", "planes": "/tmp/lead22/sides", "ames": "/tmp/ddpm22/sides", "airports": "/tmp/ddpm22/sides", "basic_motions": "/tmp/ddpm22/sides", "weather": "/tmp/ddpm22/sides"}
name = sys.argv[1]; rounds = int(sys.argv[2])
df = pd.read_csv(f"{D[name]}/{name}/train.csv")
m = twinforge.create("tvae", seed=0, progress=False, epochs=1).fit(df, twinforge.Metadata.detect(df))
enc = m.encoding_
arrays = with_residuals(without(m.transformer_.transform(df), m.keylike_), m.residuals_)
codes, scalars = enc.encode(arrays, None)
n = len(codes); nval = n // 10
tensors = m._tensors(codes[nval:], scalars[nval:]); val = m._tensors(codes[:nval], scalars[:nval])
ntr = n - nval; batch = 500; steps = ntr // batch
positions = torch.as_tensor(np.concatenate([np.arange(a, a + k) for a, k in zip(enc.span_starts_, enc.span_sizes_)]))
segment = torch.as_tensor(np.repeat(np.arange(enc.n_spans), enc.span_sizes_))
starts = torch.as_tensor(np.concatenate([[0], np.cumsum(enc.span_sizes_)[:-1]]))
def main_loss(mm, x, codes, scalars, present):
    mu, logvar = (h.float() for h in mm.encoder_(x))
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    raw = mm.decoder_(z).float()
    rec = raw.new_zeros(())
    rec = rec + nn_main.segment_nll(raw[:, positions], segment, enc.n_spans, codes + starts).sum()
    sigma = mm.decoder_.sigma()
    mean = torch.tanh(raw[:, torch.as_tensor(enc.scalar_pos_)])
    nll = 0.5 * ((scalars - mean) / sigma) ** 2 + sigma.log()
    rec = rec + (nll * present).sum()
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
    return (float(mm.loss_factor) * rec + kl) / len(x)
models = {"main": copy.deepcopy(m), "branch": copy.deepcopy(m)}
opts = {"main": nn_main.Adam(_VAE(models["main"].encoder_, models["main"].decoder_).parameters(), 3e-3, weight_decay=1e-5, fused=True),
        "branch": Adam(_VAE(models["branch"].encoder_, models["branch"].decoder_).parameters(), 3e-3, weight_decay=1e-5, fused=True)}
val_noise = torch.randn(nval, m.latent_dim)
dev = torch.device("cpu")
def epoch(v):
    mm, opt = models[v], opts[v]
    mm.encoder_.train(); mm.decoder_.train()
    perm = torch.randperm(ntr)
    for i in range(steps):
        rows = perm[i * batch:(i + 1) * batch]
        with training_precision(dev):
            if v == "main":
                loss = main_loss(mm, *(t[rows] for t in tensors))
            else:
                loss = mm._loss(*(t.index_select(0, rows) for t in tensors))
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); float(loss.detach())
    mm.encoder_.eval(); mm.decoder_.eval()
    with torch.inference_mode():
        if v == "main":
            with seeded(np.random.default_rng(5), dev), training_precision(dev):
                float(main_loss(mm, *val))
        else:
            with training_precision(dev):
                float(mm._loss(*val, noise=val_noise))
res = {"main": [], "branch": []}
for v in res:
    for _ in range(2): epoch(v)
for r in range(rounds):
    for v in (("main", "branch") if r % 2 == 0 else ("branch", "main")):
        t0 = time.process_time()
        for _ in range(5): epoch(v)
        res[v].append((time.process_time() - t0) / 5 * 1e3)
a, b = np.array(res["main"]), np.array(res["branch"])
print(f"{name}: {steps} steps/epoch; CPU ms per epoch main median {np.median(a):.1f} (min {a.min():.1f}), branch median {np.median(b):.1f} (min {b.min():.1f}); "
      f"paired ratio median {np.median(b / a):.3f}, range {np.min(b / a):.3f}-{np.max(b / a):.3f}", flush=True)
