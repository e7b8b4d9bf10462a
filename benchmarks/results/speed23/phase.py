"""Where the first big draw's page faults go (process-wide minflt by phase), loaded ames, 2 workers, main's code."""
import resource, sys, time
import twinforge
from twinforge.models import base
def flt(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
P = {}
m = twinforge.load(sys.argv[1])
orig_sample, orig_inv = type(m)._sample, m.transformer_.inverse_transform
def s(self, *a, **k):
    f = flt(); r = orig_sample(self, *a, **k); P["_sample"] = P.get("_sample", 0) + flt() - f; return r
def inv(*a, **k):
    f = flt(); r = orig_inv(*a, **k); P["inverse_transform"] = P.get("inverse_transform", 0) + flt() - f; return r
type(m)._sample = s; m.transformer_.inverse_transform = inv
m.sample(1000, seed=0)
for r in range(3):
    P.clear(); f = flt(); c = time.process_time()
    m.sample(100_000, seed=r, workers=2)
    print(f"draw {r}: faults {flt() - f} {P}  CPU {time.process_time() - c:.2f}s", flush=True)
