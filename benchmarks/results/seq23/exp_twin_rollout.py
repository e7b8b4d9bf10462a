"""Twin fine-tuning with a multi-step (sampled rollout CRPS) loss on the history, inner entities."""

import copy
import json
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import torch
from common import *
from rollout import rollout_crps

from twinforge.sequences.model import _nll

name = sys.argv[1]
seed = int(sys.argv[2])
variants = [json.loads(v) for v in sys.argv[3].split(";")]
tag = sys.argv[4] if len(sys.argv) > 4 else ""
ks = [int(k) for k in (sys.argv[5].split(",") if len(sys.argv) > 5 else ["25"])]
fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
m = get_model(name, seed, tag=tag)
enc = m.encoding_


def tuned_twin(h, v):
    twin = m.personalize(h, epochs=0, level=0.0, encode=False, posterior=False, progress=False)
    if v.get("epochs", 0) == 0:
        return twin
    net = copy.deepcopy(twin.model_.net_)
    times = twin.times_
    y = twin.y_
    prev, extra = m._history_inputs(y, times)
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)
    prev_t, extra_t, cur_t, y_t = t(prev), t(extra), t(enc.features(y)[None]), t(y[None])
    cond = t(m.static_encoding_.encode(twin.static_row_))
    mean, var = t(m.z_mean_), t(np.diag(m.z_cov_))
    z = torch.nn.Parameter(mean.clone()[None])
    pop = {k: p.detach().clone() for k, p in net.named_parameters()}
    wparams = [p for k, p in net.named_parameters() if k != "entity.weight"]
    groups = [{"params": [z], "lr": v.get("lr_z", 0.05)}]
    if v.get("lr_w", 5e-4) > 0:
        groups.append({"params": wparams, "lr": v.get("lr_w", 5e-4)})
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(0)
    n = len(y)
    mask = torch.ones(1, n)
    lam, R, M = v.get("lam", 1.0), v.get("R", 25), v.get("M", 16)
    anchor = v.get("anchor", 0.1)
    origins = torch.arange(1, n - 1)[None]  # every step as a forecast origin
    net.train()
    for i in range(v["epochs"]):
        cz = torch.cat([cond, z], -1)
        out, _ = net.run(prev_t, extra_t, cz, net.initial(cz))
        nll = _nll(enc, net.params(out, cz, cur_t), y_t, mask).sum() / n
        loss = v.get("nll", 1.0) * nll + 0.5 * ((z[0] - mean) ** 2 / var).sum() / n
        if lam > 0:
            loss = loss + lam * rollout_crps(net, enc, out, extra_t, cz, y_t, mask, origins, min(R, n), M, gen)
        if anchor > 0 and v.get("lr_w", 5e-4) > 0:
            loss = loss + anchor * sum(
                ((p - pop[k]) ** 2).sum() for k, p in net.named_parameters() if k != "entity.weight"
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    twin.model_ = copy.copy(twin.model_)
    twin.model_.net_ = net
    twin.z_ = z.detach().numpy()[0].astype("float64")
    return twin


for k in ks:
    history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
    hs = {e: history.iloc[r].reset_index(drop=True) for e, r in history.groupby(ek, sort=False).indices.items()}
    for v in variants:
        t0 = time.process_time()
        fcs = {e: tuned_twin(h, v).forecast(HORIZON, PATHS, seed=0) for e, h in hs.items()}
        g = score(fcs, actual, ek, tk, numeric, scale)
        print(
            f"{name} s{seed} k={k} {json.dumps(v):<60} CRPS {g.mean():.4f} blocks "
            + " ".join(f"{g[:, a : a + 5].mean():.3f}" for a in range(0, HORIZON, 5))
            + f"  ({time.process_time() - t0:.0f} cpu s)",
            flush=True,
        )
