set -e
cd /work/wt-dv
export PYTHONPATH=/tmp/ctgan24/src_final2/src
.venv/bin/python benchmarks/bench_neural.py --datasets-only ames,flights --max-rows 5000 --models ctgan --anchors ctgan --sample-rows 5000 --sides-dir /tmp/ctgan24/sides --reuse sdv_ctgan --out /tmp/ctgan24/bench_ames_flights_min.json 2>&1 | grep -v "^  " | tail -30
