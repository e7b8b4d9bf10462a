"""Hash of a seeded fit+sample (model, table, epochs) with whichever twinforge is on the path; CPU s of the fit."""
import sys, time, hashlib
import pandas as pd, torch
import twinforge
D = {"default": "/tmp/lead23/tv", "flights": "/tmp/lead23/tv", "churn": "/tmp/lead22/sides", "covid": "/tmp/lead22/sides",
     "planes": "/tmp/lead22/sides", "ames": "/tmp/ddpm22/sides", "airports": "/tmp/ddpm22/sides",
     "basic_motions": "/tmp/ddpm22/sides", "weather": "/tmp/ddpm22/sides"}
for spec in sys.argv[1:]:
    model, name, epochs = spec.split(":")
    df = pd.read_csv(f"{D[name]}/{name}/train.csv")
    md = twinforge.Metadata.detect(df)
    kw = {"epochs": int(epochs)} if int(epochs) > 0 else {}
    t0 = time.process_time()
    m = twinforge.create(model, seed=0, progress=False, **kw).fit(df, md)
    fit = time.process_time() - t0
    s = m.sample(2000, seed=0)
    h = hashlib.sha1(pd.util.hash_pandas_object(s, index=True).values.tobytes()).hexdigest()[:12]
    tr = getattr(m, "training_", {})
    print(f"{spec} {twinforge.__file__.split('/src/')[0]} hash {h} fit_cpu {fit:.2f} best {tr.get('best_epoch')} val {tr.get('best_validation')}", flush=True)
