"""Differentiable sampled rollouts of the sequence net and their CRPS (experiment code, session 23)."""

import numpy as np
import torch
from torch import nn

from twinforge.sequences.model import _mixture_parts, _nll, parse_time


def entity_arrays(model, df):
    lay = model.layout_
    ek, tk = lay["entity_key"], lay["time_key"]
    ys, states = [], []
    for _, g in df.groupby(ek, sort=False):
        g = g.sort_values(tk)
        times = parse_time(g[tk], tk, model._time_format())[0]
        y = model.encoding_.encode(g, times)
        el = (times - times[0]) / lay["time_scale"]
        ys.append(y)
        states.append(model._step_state(y, el, times))
    cond = model.static_encoding_.encode(df.groupby(ek, sort=False).first().reset_index()[lay["static_columns"]])
    return ys, states, cond


def sample_step(net, enc, o_t, cz, gen):
    """One step's draws from the GRU output o_t (N, H): features (N, d_step) with gradients through numeric values,
    and the drawn targets (N, n_blocks)."""
    k = enc.state["k"]
    base, scale, offset = net.base(o_t, cz)
    N = o_t.shape[0]
    cur = torch.zeros(N, enc.d_step, device=o_t.device)
    vals = []
    for i, b in enumerate(enc.blocks):
        par = (base + net.link(cur, scale, offset))[:, b["p0"] : b["p0"] + b["n_par"]]
        if b["kind"] == "cat":
            with torch.no_grad():
                code = torch.multinomial(torch.softmax(par, -1), 1, generator=gen)[:, 0]
            feat = torch.nn.functional.one_hot(code, b["n_feat"]).float()
            vals.append(code.float())
        else:
            off = 1 if b.get("missing") else 0
            logw, mu, logstd = _mixture_parts(par[:, off:], k)
            with torch.no_grad():
                comp = torch.multinomial(logw.exp(), 1, generator=gen)
            eps = torch.randn(N, 1, generator=gen, device=o_t.device)
            v = (mu.gather(1, comp) + logstd.gather(1, comp).exp() * eps)[:, 0]
            vals.append(v)
            feat = torch.clamp(v, -10, 10)[:, None]
            if off:
                feat = torch.cat([feat, torch.zeros_like(feat)], 1)
        cur = cur + torch.nn.functional.pad(feat, (b["f0"], enc.d_step - b["f0"] - b["n_feat"]))
    return cur, torch.stack(vals, 1)


def rollout_crps(net, enc, out, extra, cz, y, mask, origins, R, M, gen):
    """Mean fair-CRPS over numeric channels and up to R steps of M sampled paths from each origin.

    out (B, L, H) teacher-forced GRU outputs; origins (B, O) long: the first forecast step (its output is out[:, o])."""
    B, L, H = out.shape
    O = origins.shape[1]
    num = [i for i, b in enumerate(enc.blocks) if b["kind"] == "num" and b["name"] != "__gap__"]
    bi = torch.arange(B, device=out.device)[:, None].expand(B, O).reshape(-1)
    oi = origins.reshape(-1)
    rep = lambda a: a.repeat_interleave(M, 0)  # noqa: E731
    o_t = rep(out[bi, oi])
    czr = rep(cz[bi])
    h = o_t[None].contiguous()
    total = out.new_zeros(())
    count = out.new_zeros(())
    for r in range(R):
        step = oi + r
        ok = step < L
        stepc = step.clamp(max=L - 1)
        valid = ok & (mask[bi, stepc] > 0)
        if r > 0:
            ex = rep(extra[bi, stepc])
            o_seq, h = net.run(feat[:, None], ex[:, None], czr, h)
            o_t = o_seq[:, 0]
        feat, drawn = sample_step(net, enc, o_t, czr, gen)
        x = drawn[:, num].reshape(B * O, M, len(num))
        tgt = y[bi, stepc][:, num]  # (BO, C)
        good = valid[:, None] & ~torch.isnan(tgt)
        tgt0 = torch.where(good, tgt, torch.zeros_like(tgt))
        t1 = (x - tgt0[:, None]).abs().mean(1)
        t2 = (x[:, :, None] - x[:, None]).abs().sum((1, 2)) / (M * (M - 1))
        crps = t1 - 0.5 * t2
        total = total + torch.where(good, crps, torch.zeros_like(crps)).sum()
        count = count + good.float().sum()
    return total / count.clamp_min(1.0)


def refine(model, df, steps=150, lam=1.0, lr=1e-3, R=10, O=4, M=8, seed=0, batch=64, window=32, log=None):
    """Continue training model.net_ on df: one-step NLL + lam x rollout CRPS."""
    ys, states, cond = entity_arrays(model, df)
    feats = [model.encoding_.features(y) for y in ys]
    net = model.net_
    device = next(net.parameters()).device
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr)
    n_e = len(ys)
    lengths = np.array([len(y) for y in ys])
    enc = model.encoding_
    net.train()
    for s in range(steps):
        idx = rng.choice(n_e, size=min(batch, n_e), replace=False)
        lens = np.minimum(lengths[idx], window)
        starts = rng.integers(0, lengths[idx] - lens + 1)
        prev, extra, cur, y, mask, c = model._batch(ys, feats, states, cond, idx, starts, lens, device)
        z = net.entity(torch.as_tensor(idx, device=device))
        cz = torch.cat([c, z], -1)
        out, _ = net.run(prev, extra, cz, net.initial(cz))
        par = net.params(out, cz, cur)
        nll = _nll(enc, par, y, mask).sum() / mask.sum()
        loss = nll
        if lam > 0:
            L = out.shape[1]
            origins = torch.as_tensor(rng.integers(1, max(2, L - 2), size=(len(idx), O)), device=device)
            rc = rollout_crps(net, enc, out, extra, cz, y, mask, origins, R, M, gen)
            loss = loss + lam * rc
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if log and s % 25 == 0:
            log(f"step {s} nll {float(nll):.3f}" + (f" rollout {float(rc):.3f}" if lam > 0 else ""))
    net.eval()
    return model
