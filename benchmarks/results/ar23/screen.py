"""DCR screen on a split of bench_auto's TRAINING rows (auto_train_split.split; the bench holdout is never read).
python screen.py TABLES CONFIGS_JSON  -- per table, per config (label, fit_seed, mod, temps), one fit; DCR share of
8 draws of len(scored) rows each against a train sample and the scored rows (bench's _extra_metrics.dcr_share)."""
import json, sys, time
import numpy as np
sys.path.insert(0, "/work/wt-ar/benchmarks")
from auto_train_split import split
import _extra_metrics as xm
import twinforge
import twinforge.models.autoregressive as ar

tables, configs = sys.argv[1].split(","), json.loads(sys.argv[2])
for name in tables:
    fit_df, scored = split(name)
    meta = twinforge.Metadata.detect(fit_df)
    excluded = [c for c in meta.columns if c not in meta.learned_columns]
    fit_x, test_x = fit_df.drop(columns=excluded), scored.drop(columns=excluded)
    enc = xm.Encoder(fit_x)
    train_sample = fit_x.iloc[np.random.default_rng(0).choice(len(fit_x), len(test_x), replace=False)]
    for cfg in configs:
        cfg = dict(cfg)
        cfg_loo = cfg.pop("loo", False)
        label, mods, fs, temps = cfg.pop("label"), cfg.pop("mod", {}), cfg.pop("fit_seed", 0), cfg.pop("temps", [1.0])
        saved = {k: getattr(ar, k) for k in mods}
        for k, v in mods.items():
            setattr(ar, k, v)
        try:
            t = time.process_time()
            model = twinforge.create("auto", seed=fs, progress=False, **cfg).fit(fit_df, meta)
            fit_cpu = time.process_time() - t
            for temp in temps:
                draws = model.sample(8 * len(test_x), seed=10, temperature=temp)[fit_x.columns]
                shares = [xm.dcr_share(enc, draws.iloc[c * len(test_x):(c + 1) * len(test_x)], train_sample, test_x)
                          for c in range(8)]
                info = model.train_info_
                if cfg_loo and temp == 1.0:  # DCR share with each column left out of the distance
                    few = draws.iloc[: len(test_x)]
                    for col in fit_x.columns:
                        e2 = xm.Encoder(fit_x.drop(columns=[col]))
                        v = np.mean([xm.dcr_share(e2, draws.iloc[c * len(test_x):(c + 1) * len(test_x)].drop(columns=[col]),
                                                  train_sample.drop(columns=[col]), test_x.drop(columns=[col])) for c in range(8)])
                        print(f"  loo {name} {label} without {col} ({enc.kinds[col]}, {fit_x[col].nunique()} values): {v:.4f}", flush=True)
                print(f"{name} {label} f{fs} T={temp}: dcr8 {np.mean(shares):.4f} {np.round(shares, 3).tolist()} "
                      f"val {info.get('best_validation'):.4f} epochs {info.get('best_epoch')}/{info.get('epochs')} "
                      f"fit {fit_cpu:.1f} CPU s", flush=True)
        finally:
            for k, v in saved.items():
                setattr(ar, k, v)
