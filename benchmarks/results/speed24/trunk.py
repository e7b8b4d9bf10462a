"""Trunk variants, one thread: us per row per pass on x0 [16384, width] (ames, flights)."""
import time, numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
def best(f, n=7):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e6 / 16384
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(2000, np.random.default_rng(0), workers=1)
    fast, dtype = m._sampling_net(torch.device("cpu"))
    net = m.net_
    W = net.embed.weight.shape[1]
    x0 = net.embed.weight[torch.randint(0, len(net.embed.weight), (16384, 20))].sum(1)
    with torch.inference_mode():
        r = {}
        r["current"] = best(lambda: ar._hidden_inplace(fast, x0, net.norm, dtype))
        for c in (512, 1024, 4096):
            ar._TRUNK_CHUNK = c
            r[f"chunk{c}"] = best(lambda: ar._hidden_inplace(fast, x0, net.norm, dtype))
        ar._TRUNK_CHUNK = 2048
        r["float32"] = best(lambda: ar._hidden_inplace(net, x0, net.norm, torch.float32))
        lin, ln2 = net.trunk.net[0], net.trunk.net[1]
        flin, fln2 = fast.trunk.net[0], fast.trunk.net[1]
        def mixed(x):  # bf16 matmul, LN2 in float32 then cast
            h = F.silu(net.norm(x), inplace=True).to(torch.bfloat16)
            h = flin(h).float()
            return F.silu(ln2(h), inplace=True).to(torch.bfloat16)
        def chunked(f, x, step=2048):
            out = torch.empty(len(x), W, dtype=torch.bfloat16)
            for s in range(0, len(x), step):
                out[s:s + step] = f(x[s:s + step])
            return out
        r["mixed"] = best(lambda: chunked(mixed, x0))
        xc = x0[:2048].contiguous()
        r["ln1 f32"] = best(lambda: [net.norm(xc) for _ in range(8)])
        h = F.silu(net.norm(xc)).to(torch.bfloat16)
        r["silu f32"] = best(lambda: [F.silu(xc) for _ in range(8)])
        r["cast"] = best(lambda: [xc.to(torch.bfloat16) for _ in range(8)])
        r["lin bf16"] = best(lambda: [flin(h) for _ in range(8)])
        hf = h.float()
        r["lin f32"] = best(lambda: [lin(hf) for _ in range(8)])
        hb = flin(h)
        r["ln2 bf16"] = best(lambda: [fln2(hb) for _ in range(8)])
        r["ln2 f32"] = best(lambda: [ln2(hf) for _ in range(8)])
        r["silu bf16"] = best(lambda: [F.silu(hb) for _ in range(8)])
        hid = ar._hidden_inplace(fast, x0, net.norm, dtype)
        heads = m._column_heads({k: v for k, v in m.layout_.items()}, torch.device("cpu"))
        big = max(m.groups_, key=lambda g: sum(len(heads[i].weight) for i in g))
        wgt = torch.cat([heads[i].weight for i in big]); bias = torch.cat([heads[i].bias for i in big])
        r[f"head bf16 K={len(wgt)}"] = best(lambda: F.linear(hid, wgt, bias))
        r[f"head f32 K={len(wgt)}"] = best(lambda: F.linear(hid.float(), wgt.float(), bias.float()))
        wT = wgt.float().T.contiguous()
        r[f"head f32 tmajor"] = best(lambda: torch.addmm(bias.float()[:, None], wgt.float(), hid.float().T))
        r[f"head bf16 tmajor"] = best(lambda: torch.addmm(bias[:, None], wgt, hid.T))
    print(name, "W", W, " ".join(f"{k}: {v:.3f}" for k, v in r.items()), flush=True)
