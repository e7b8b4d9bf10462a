set -e
cd /work/wt-dv
export PYTHONPATH=/tmp/ctgan24/src_final/src
.venv/bin/python benchmarks/bench_neural.py --datasets-only ames,flights --max-rows 5000 --models ctgan --anchors ctgan --sample-rows 5000 --sides-dir /tmp/ctgan24/sides --reuse sdv_ctgan --out /tmp/ctgan24/bench_ames_flights.json 2>&1 | grep -v "^  " | tail -30
~/.cache/anchors/sdv/bin/python /tmp/ctgan23/perclass2.py /tmp/ctgan24/sides/covid main=/tmp/ctgan24/sides/covid/ctgan_main.parquet branch=/tmp/ctgan24/sides/covid/ctgan.parquet sdv=/tmp/ctgan24/sides/covid/sdv_ctgan.parquet
