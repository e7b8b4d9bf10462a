import sys, time, collections, numpy as np, torch
import torch.nn.functional as F
torch.set_num_threads(1)
import twinforge, twinforge.models.autoregressive as ar
acc = collections.defaultdict(float)
def gl(heads, unit, hidden):
    key = tuple(unit)
    cache = heads[unit[0]].group_cache
    if key not in cache:
        cache[key] = (torch.cat([heads[i].weight for i in unit]), torch.cat([heads[i].bias for i in unit]),
                      [len(heads[i].weight) for i in unit], torch.cat([heads[i].fused_calibration() for i in unit]))
    weight, bias, sizes, calibration = cache[key]
    t0 = time.perf_counter()
    out = F.linear(hidden, weight, bias)
    t1 = time.perf_counter()
    acc[(len(weight), "linear")] += t1 - t0
    if len(unit) == 1:
        return [out], False
    if out.numel() > ar._FUSED_LOGITS:
        return list(out.split(sizes, dim=1)), False
    out = out.float() if out.dtype != torch.float32 else out
    t2 = time.perf_counter()
    acc[(len(weight), "float")] += t2 - t1
    out.add_(calibration)
    acc[(len(weight), "add_")] += time.perf_counter() - t2
    return list(out.split(sizes, dim=1)), True
ar._group_linear = gl
m = twinforge.load(f"/tmp/ar22/models/{sys.argv[1]}")
m._sample(2000, np.random.default_rng(0), workers=1)
for r in range(3):
    acc.clear()
    m._sample(16384, np.random.default_rng(r), workers=1)
print({k: round(v * 1e9 / 16384 / k[0], 2) for k, v in sorted(acc.items())}, "ns per logit")
print("total us/row", round(sum(acc.values()) * 1e6 / 16384, 2))
