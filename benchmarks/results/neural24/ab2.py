"""A/B of tvae step variants on the branch code (CPU ms per step, alternating rounds)."""
import sys, time
import numpy as np, pandas as pd, torch
from torch import nn
import twinforge
from twinforge.models._nn import Adam, training_precision, segment_nll
from twinforge.models._tabular_nn import without
from twinforge.models.vae import with_residuals
import twinforge.models.vae as V

name = sys.argv[1]
variants = sys.argv[2].split(",")
D = {"default": "/tmp/lead23/tv", "flights": "/tmp/lead23/tv", "churn": "/tmp/lead22/sides", "covid": "/tmp/lead22/sides",
     "planes": "/tmp/lead22/sides", "ames": "/tmp/ddpm22/sides", "airports": "/tmp/ddpm22/sides",
     "basic_motions": "/tmp/ddpm22/sides", "weather": "/tmp/ddpm22/sides"}
df = pd.read_csv(f"{D[name]}/{name}/train.csv")
md = twinforge.Metadata.detect(df)
m = twinforge.create("tvae", seed=0, progress=False, epochs=1).fit(df, md)
enc = m.encoding_
arrays = with_residuals(without(m.transformer_.transform(df), m.keylike_), m.residuals_)
codes, scalars = enc.encode(arrays, None)
tensors = m._tensors(codes, scalars)
vae = torch.nn.ModuleList([m.encoder_, m.decoder_]); vae.train()
opt = Adam(vae.parameters(), 3e-3, weight_decay=1e-5, fused=True)
n = len(codes)
L = m.latent_dim

def body_float(mlp, x):
    for layer in mlp.net:
        x = layer(x.float() if isinstance(layer, nn.LayerNorm) else x)
    return x

class Reparam(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, eps):
        mu, lv = h[:, :L], h[:, L:]
        inside = (lv >= -10.0) & (lv <= 10.0)
        lv = lv.clamp(-10.0, 10.0)
        std = torch.exp(0.5 * lv)
        z = torch.addcmul(mu, eps, std)
        var = std * std
        kl = 0.5 * (torch.dot(mu.reshape(-1), mu.reshape(-1)) if mu.is_contiguous() else mu.pow(2).sum()) + 0.5 * (var.sum() - lv.sum()) - 0.5 * mu.numel()
        ctx.save_for_backward(mu, eps, std, var, inside)
        return z, kl
    @staticmethod
    def backward(ctx, gz, gkl):
        mu, eps, std, var, inside = ctx.saved_tensors
        gh = torch.empty(len(mu), 2 * L, dtype=mu.dtype)
        torch.add(gz, mu, alpha=float(gkl), out=gh[:, :L])
        glv = torch.addcmul((0.5 * float(gkl)) * (var - 1.0), gz * eps, std, value=0.5)
        torch.mul(glv, inside, out=gh[:, L:])
        return gh, None

def loss_v(x, codes, scalars, present, lnf=False, klf=False):
    layout = m._layout(x.device)
    if lnf:
        h = body_float(m.encoder_.body, x).float()
    else:
        h = m.encoder_.body(x).float()
    if klf:
        z, kl = Reparam.apply(h, torch.randn(len(x), L))
    else:
        mu, logvar = h[:, :L], h[:, L:].clamp(-10, 10)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
    raw = (body_float(m.decoder_.body, z) if lnf else m.decoder_.body(z)).float()
    rec = raw.new_zeros(())
    if layout["narrow"] is not None:
        positions, segment, spans, starts = layout["narrow"]
        rec = rec + segment_nll(raw.index_select(1, positions), segment, len(spans), codes.index_select(1, spans) + starts).sum()
    for s, a, k in layout["wide"]:
        rec = rec + nn.functional.cross_entropy(raw[:, a:a + k], codes[:, s], reduction="sum")
    sigma = m.decoder_.sigma()
    mean = torch.tanh(raw.index_select(1, layout["scalars"]))
    nll = 0.5 * ((scalars - mean) / sigma) ** 2 + sigma.log()
    rec = rec + (nll * present).sum()
    return (2.0 * rec + kl) / len(x)

perm = torch.randperm(n)
def make_step(v):
    def step(i):
        rows = perm[(i % 10) * 500:(i % 10) * 500 + 500]
        batch = [t.index_select(0, rows) for t in tensors]
        with training_precision(torch.device("cpu"), "noamp" not in v):
            loss = m._loss(*batch) if v == "new" else loss_v(*batch, lnf="ln" in v, klf="kl" in v)
        opt.zero_grad(); loss.backward(); opt.step()
        return float(loss.detach())
    return step
steps = {v: make_step(v) for v in variants}
# gradient check of the hand-written backward against autograd's
h = torch.randn(64, 2 * L, dtype=torch.float64) * 4; h.requires_grad_(True)
eps = torch.randn(64, L, dtype=torch.float64)
gz = torch.randn(64, L, dtype=torch.float64)
z, kl = Reparam.apply(h, eps); (z * gz).sum().backward(retain_graph=False) ; g1 = h.grad.clone(); h.grad = None
z, kl2 = Reparam.apply(h, eps); (kl2 * 0.7).backward(); g1b = h.grad.clone(); h.grad = None
mu, lv = h[:, :L], h[:, L:].clamp(-10, 10); z2 = mu + eps * (0.5 * lv).exp(); (z2 * gz).sum().backward(); g2 = h.grad.clone(); h.grad = None
mu, lv = h[:, :L], h[:, L:].clamp(-10, 10); kl3 = -0.5 * (1 + lv - mu**2 - lv.exp()).sum(); (kl3 * 0.7).backward(); g2b = h.grad.clone()
print("grad check z", float((g1 - g2).abs().max()), "kl", float((g1b - g2b).abs().max()), "kl value", float(kl - kl3))
res = {v: [] for v in variants}
for v in variants:
    for i in range(20): steps[v](i)
for rnd in range(int(sys.argv[3]) if len(sys.argv) > 3 else 6):
    for v in variants:
        t0 = time.process_time()
        for i in range(100): steps[v](i)
        res[v].append((time.process_time() - t0) / 100 * 1e3)
for v in variants:
    a = np.array(res[v])
    print(f"{name} {v:14s} ms/step median {np.median(a):.3f}  min {a.min():.3f}  all {np.round(a, 2).tolist()}", flush=True)
