import json
import os
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import *

name = sys.argv[1]
seeds = [int(s) for s in sys.argv[2].split(",")]
emas = sys.argv[3].split(",")
params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
fit_df, scored, ek, tk, static, numeric, scale, args = inner(name)
for seed in seeds:
    for e in emas:
        os.environ["TF_EMA"] = e  # session-23 prototype switch; the committed code takes average=
        run = {"average": float(e), **({"patience": 6} if float(e) == 0 else {}), **params}  # ema 0: the old defaults
        t = time.process_time()
        m = twinforge.create("sequence", seed=seed, progress=False, **run).fit(
            fit_df, entity_key=ek, time_key=tk, static=static
        )
        cpu = time.process_time() - t
        m.save(
            model_path(
                name, seed, f"_ema{e}" + ("_p" + "_".join(f"{a}{b}" for a, b in run.items()) if run else "")
            ),
            overwrite=True,
        )
        cells = []
        for k in (10, 25):
            history, actual, _ = F.split_history(scored, entity_key=ek, time_key=tk, k=k, horizon=HORIZON)
            fcs = {
                en: m.forecast(history.iloc[r].reset_index(drop=True), HORIZON, PATHS, seed=0)
                for en, r in history.groupby(ek, sort=False).indices.items()
            }
            g = score(fcs, actual, ek, tk, numeric, scale)
            cells.append(f"k={k} {g.mean():.4f}")
        ti = m.train_info_
        print(
            f"{name} seed {seed} ema {e} {run}: fit cpu {cpu:.2f} s, epochs {ti['epochs']} (best {ti['best_epoch']}), train {ti['seconds']:.2f}s, val {ti['best_validation']:.3f}; "
            + ", ".join(cells),
            flush=True,
        )
