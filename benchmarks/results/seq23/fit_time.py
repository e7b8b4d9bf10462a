"""Fit CPU time and epochs in the bench's configuration (its 64 train entities, seed 0): average 0 / patience 6
(the old defaults) against average 0.9 / patience 3."""
import sys, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
import bench_twins as B
import twinforge

for name in ("basic_motions", "turbines"):
    args = B.parse_args(["--datasets-only", name])
    df, ek, tk, static, _ = B.load_dataset(name, args)
    train, _ = B.split_entities(df, ek, 0)
    twinforge.create("sequence", seed=1, epochs=1, progress=False).fit(train, entity_key=ek, time_key=tk, static=static)  # warm-up
    for params in ({"average": 0.0, "patience": 6}, {"average": 0.9, "patience": 3}, {"average": 0.0, "patience": 6}, {"average": 0.9, "patience": 3}):
        t = time.process_time()
        m = twinforge.create("sequence", seed=0, progress=False, **params).fit(train, entity_key=ek, time_key=tk, static=static)
        ti = m.train_info_
        print(f"{name} {params}: fit cpu {time.process_time() - t:.2f} s, epochs {ti['epochs']} (best {ti['best_epoch']}), train {ti['seconds']:.2f} s, validation {ti['best_validation']:.3f}", flush=True)
