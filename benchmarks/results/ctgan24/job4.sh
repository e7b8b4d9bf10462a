set -e
cd /work/wt-dv
export PYTHONPATH=/tmp/ctgan24/src_rr/src
.venv/bin/python -c "import twinforge, sys; print(twinforge.__file__)"
.venv/bin/python -m pytest -q -x -p no:cacheprovider tests/test_neural.py -k ctgan 2>&1 | tail -3
.venv/bin/python benchmarks/bench_neural.py --datasets-only covid --models ctgan --anchors ctgan --sample-rows 5000 --sides-dir /tmp/ctgan24/sides --reuse sdv_ctgan --out /tmp/ctgan24/bench_covid_rr.json 2>&1 | tail -12
