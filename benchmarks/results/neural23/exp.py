"""Split experiment (training rows only): fit tvae on 80% of a bench side's train.csv, score on the other 20%.
argv: side_dir out_dir name json_params [noise factors comma] [derived 0/1]
Writes OUT/NAME_f{factor}_s{seed}.parquet, fit.json with fit CPU s and training info."""
import json, os, sys, time
import numpy as np, pandas as pd, torch
import twinforge
from twinforge.models import vae as V
from twinforge.models._tabular_nn import fit_derived, apply_derived, without
from twinforge.privacy import public_arrays
torch.set_num_threads(1)
side, out, name, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
factors = [float(f) for f in (sys.argv[5] if len(sys.argv) > 5 else "1").split(",")]
derive = len(sys.argv) > 6 and sys.argv[6] == "1"
os.makedirs(out, exist_ok=True)
train = pd.read_csv(f"{side}/train.csv")
inner = pd.Series(range(len(train))).sample(frac=1.0, random_state=1).to_numpy()
k = round(len(train) * 0.2)
fit_df, scored = train.iloc[inner[k:]].reset_index(drop=True), train.iloc[inner[:k]].reset_index(drop=True)
fit_df.to_csv(f"{out}/fit.csv", index=False); scored.to_csv(f"{out}/scored.csv", index=False)
md = twinforge.Metadata.detect(fit_df)
orig = V.TVAE._decode_draw
FACTOR = [1.0]
def patched(self, z, cons, rng, temperature):
    enc = self.encoding_
    raw = self.decoder_(z).cpu().numpy().astype("float64")
    logits = [raw[:, a : a + b] for a, b in zip(enc.span_starts_, enc.span_sizes_, strict=True)]
    means = np.tanh(raw[:, enc.scalar_pos_])
    stds = np.broadcast_to(self.decoder_.sigma().cpu().numpy().astype("float64") * FACTOR[0], means.shape)
    return enc.draw(logits, means, stds, cons, rng, temperature, likeliest_modes=self.modes_ == "likeliest")
V.TVAE._decode_draw = patched
c0 = time.process_time(); w0 = time.perf_counter()
fs = params.pop("fit_seed", 0)
m = twinforge.create("tvae", seed=fs, progress=False, **params).fit(fit_df, md)
info = {"fit_cpu": time.process_time() - c0, "fit_wall": time.perf_counter() - w0,
        "training": {k: v for k, v in m.training_.items() if k != "history"},
        "val": [round(h.get("validation", float("nan")), 4) for h in m.training_["history"]], "dim": m.encoding_.dim_}
print(name, json.dumps({k: v for k, v in info.items() if k != "val"}), flush=True)
arrays = m.transformer_.transform(fit_df)
arrays = without(arrays, m.keylike_)
derived = fit_derived(arrays, m.transformer_.transforms_, False) if derive else {}
info["derived"] = list(derived)
osample = V.TVAE._sample
USE = [False]
def sample_d(self, n, rng, request=None):
    res = osample(self, n, rng, request)
    return apply_derived(res, derived, request) if USE[0] else res
V.TVAE._sample = sample_d
for f in factors:
    FACTOR[0] = f
    if f != 1.0 or len(factors) > 1:
        m.value_map_ = m._fit_value_map(arrays, np.random.default_rng(123))
    for s in (0, 1, 2):
        USE[0] = False
        m.sample(len(fit_df), seed=s).to_parquet(f"{out}/{name}_f{f:g}_s{s}.parquet")
        if derived:
            USE[0] = True
            m.sample(len(fit_df), seed=s).to_parquet(f"{out}/{name}_f{f:g}d_s{s}.parquet")
json.dump(info, open(f"{out}/{name}_fit.json", "w"))
