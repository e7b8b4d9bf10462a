set -e
cd /work/wt-dd
.venv/bin/python -m pytest -q -x tests/test_neural.py -k ctgan 2>&1 | tail -3
.venv/bin/python benchmarks/bench_neural.py --datasets-only covid --models ctgan --anchors ctgan --reuse sdv_ctgan --sample-rows 5000 --sides-dir /tmp/ctgan23/sides --out /tmp/ctgan23/bench_covid.json 2>&1 | tail -30
cd /tmp/ctgan23
/work/wt-dd/.venv/bin/python seeds.py /tmp/ctgan23/sides/covid /tmp/ctgan23/benchseeds
./score.sh benchseeds result classification ctgan
