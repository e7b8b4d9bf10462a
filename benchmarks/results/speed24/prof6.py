"""ames, one thread: aten ops by input shape (copy_ mostly), one 16,384-row block."""
import sys, numpy as np, torch
torch.set_num_threads(1)
import twinforge
m = twinforge.load(f"/tmp/ar22/models/{sys.argv[1] if len(sys.argv) > 1 else 'ames'}")
m._sample(2000, np.random.default_rng(0), workers=1)
m._sample(16384, np.random.default_rng(1), workers=1)
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True, with_stack=True) as p:
    m._sample(16384, np.random.default_rng(5), workers=1)
print(p.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=30, max_shapes_column_width=70))
print(p.key_averages(group_by_stack_n=6).table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=30))
