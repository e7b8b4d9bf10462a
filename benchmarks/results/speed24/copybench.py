import time, torch, resource
torch.set_num_threads(1)
def best(f, n=5):
    b = 1e9
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter(); f(); d = time.perf_counter() - t
        flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0
        b = min(b, d)
    return b * 1e9 / (16384 * 345), flt
x = torch.randn(16384, 345).to(torch.bfloat16)
h = torch.randn(16384, 64).to(torch.bfloat16)
w = torch.randn(345, 64).to(torch.bfloat16); bb = torch.randn(345).to(torch.bfloat16)
out = torch.empty(16384, 345)
print("float() fresh        ns/el, faults", best(lambda: x.float()))
print("copy_ into reused    ", best(lambda: out.copy_(x)))
print("empty+fill fresh f32 ", best(lambda: torch.empty(16384, 345).fill_(1.0)))
print("zeros(fresh)         ", best(lambda: torch.zeros(16384, 345)))
print("linear bf16 fresh    ", best(lambda: torch.nn.functional.linear(h, w, bb)))
print("matmul bf16 fresh    ", best(lambda: h @ w.T))
o2 = torch.empty(16384, 345, dtype=torch.bfloat16)
print("mm out= reused       ", best(lambda: torch.mm(h, w.T, out=o2)))
print("addmm out= reused    ", best(lambda: torch.addmm(bb, h, w.T, out=o2)))
print("bias expand copy     ", best(lambda: o2.copy_(bb.expand(16384, -1))))
xf = x.float()
print("exp fresh            ", best(lambda: xf.exp()))
print("exp_ inplace         ", best(lambda: xf.clone().exp_()))
print("softmax fresh        ", best(lambda: torch.softmax(xf, 1)))
print("cumsum fresh         ", best(lambda: xf.cumsum(1)))
