cd /work/wt-ar
PYTHONPATH=/tmp/ar23/src_patched /work/heavy .venv/bin/python /tmp/ar23/split_eval.py weather /tmp/ar23/split_weather '{"label": "base_f0", "fit_seed": 0}' '{"label": "jcls_f0", "fit_seed": 0, "mod": {"_INPUT_JITTER": 0.5, "_NEIGHBOUR_SMOOTHING": 0.2}}' '{"label": "base_f1", "fit_seed": 1}' '{"label": "jcls_f1", "fit_seed": 1, "mod": {"_INPUT_JITTER": 0.5, "_NEIGHBOUR_SMOOTHING": 0.2}}' > /tmp/ar23/job7.log 2>&1
echo done >> /tmp/ar23/job7.log
