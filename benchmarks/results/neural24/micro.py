import torch, time
torch.set_num_threads(1)
def bench(name, f, n=1000):
    for _ in range(50): f()
    t = time.process_time()
    for _ in range(n): f()
    print(f"{name:40s} {(time.process_time() - t) / n * 1e6:8.1f} us")
for dt in (torch.float32, torch.bfloat16):
    x = torch.randn(500, 128, dtype=dt, requires_grad=True)
    ln = torch.nn.LayerNorm(128)
    g = torch.randn(500, 128, dtype=dt)
    def lnf():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = torch.nn.functional.silu(ln(x))
        y.backward(g)
    bench(f"LN+SiLU fwd+bwd {dt}", lnf)
    bench(f"silu fwd {dt}", lambda: torch.nn.functional.silu(x.detach()))
    bench(f"exp {dt}", lambda: x.detach().exp())
    bench(f"mul {dt}", lambda: x.detach() * g)
    bench(f"clamp {dt}", lambda: x.detach().clamp(-10, 10))
    bench(f"randn {dt}", lambda: torch.randn(500, 128, dtype=dt))
    bench(f"to other", lambda: x.detach().to(torch.bfloat16 if dt == torch.float32 else torch.float32))
bench("rand float32", lambda: torch.rand(500, 128))
import numpy as np
r = np.random.default_rng(0)
bench("numpy standard_normal f32", lambda: torch.from_numpy(r.standard_normal((500, 128), dtype=np.float32)))
