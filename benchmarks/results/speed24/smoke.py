import numpy as np, torch, time
torch.set_num_threads(1)
import twinforge
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    a = m.sample(5000, seed=1, workers=1); b = m.sample(5000, seed=1, workers=2)
    print(name, "same across workers:", a.equals(b), a.shape, a.isna().mean().mean())
