set -e
cd /work/wt-dv
export PYTHONPATH=/tmp/ctgan24/src_final/src
.venv/bin/python benchmarks/bench_neural.py --datasets-only default,airports,planes --models ctgan --anchors ctgan --sample-rows 5000 --sides-dir /tmp/ctgan24/sides --reuse sdv_ctgan --out /tmp/ctgan24/bench_default_airports_planes.json 2>&1 | grep -v "^  " | tail -30
