set -e
cd /work/wt-dv
export PYTHONPATH=/tmp/ctgan24/src_final/src
.venv/bin/python -c "import twinforge; print(twinforge.__file__)"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_neural.py tests/test_contract.py tests/test_federated.py tests/test_privacy.py -k ctgan 2>&1 | tail -2
.venv/bin/python benchmarks/bench_neural.py --datasets-only covid --models ctgan --anchors ctgan --sample-rows 5000 --sides-dir /tmp/ctgan24/sides --reuse sdv_ctgan --out /tmp/ctgan24/bench_covid.json 2>&1 | tail -11
