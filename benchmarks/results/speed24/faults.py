import sys, time, resource, numpy as np, torch
torch.set_num_threads(1)
import twinforge
for name in ("ames", "flights"):
    m = twinforge.load(f"/tmp/ar22/models/{name}")
    m._sample(2000, np.random.default_rng(0), workers=1)
    for n in (16384, 16384, 16384, 49152, 49152):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.process_time(); m._sample(n, np.random.default_rng(1), workers=1); d = time.process_time() - t
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{sys.argv[1]} {name} n={n} {d*1e6/n:.2f} us/row  faults/row {(r1.ru_minflt-r0.ru_minflt)/n:.3f}  sys {r1.ru_stime-r0.ru_stime:.3f}s", flush=True)
