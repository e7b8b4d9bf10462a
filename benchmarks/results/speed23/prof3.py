import sys, time, collections
import numpy as np, torch
import twinforge
import twinforge.models.autoregressive as ar
m = twinforge.load(sys.argv[1])
rows = []
orig_fd, orig_dec = ar._finish_draw, ar._decode
cur = {}
def fd(head, out, *a, **k):
    t = time.process_time(); r = orig_fd(head, out, *a, **k); cur["fd"] = time.process_time() - t; cur["shape"] = tuple(out.shape); cur["pos"] = head.positions is not None; cur["tilt"] = head.tilted; return r
def dec(col, *a, **k):
    t = time.process_time(); r = orig_dec(col, *a, **k); rows.append((col["column"][:14], col["type"], ar._n_tokens(col), cur["shape"], cur["pos"], cur["fd"], time.process_time() - t)); return r
ar._finish_draw, ar._decode = fd, dec
N = 16384
m._sample(2000, np.random.default_rng(0), workers=1)
rows.clear()
m._sample(N, np.random.default_rng(1), workers=1)
rows.sort(key=lambda r: -(r[5] + r[6]))
tot_fd = sum(r[5] for r in rows); tot_dec = sum(r[6] for r in rows)
print(f"finish_draw {1e6*tot_fd/N:.2f} us/row decode {1e6*tot_dec/N:.2f}")
for r in rows[:30]:
    print(f"{r[0]:15s} {r[1]:8s} tok {r[2]:4d} out {r[3]} pos {r[4]!s:5s} fd {1e6*r[5]/N:.3f} dec {1e6*r[6]/N:.3f}")
by = collections.defaultdict(lambda: [0, 0.0, 0.0, 0])
for r in rows:
    b = by[r[1]]; b[0] += 1; b[1] += r[5]; b[2] += r[6]; b[3] += r[2]
for k, b in by.items():
    print(k, "cols", b[0], "tokens", b[3], f"fd {1e6*b[1]/N:.2f} dec {1e6*b[2]/N:.2f}")
