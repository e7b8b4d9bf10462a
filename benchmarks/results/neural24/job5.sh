cd /work/wt-nn
.venv/bin/python -m pytest -q -x tests/test_nn.py tests/test_neural.py tests/test_privacy.py tests/test_federated.py tests/test_contract.py -k "tvae or nn or adam or segment" 2>&1 | tail -2
B=".venv/bin/python benchmarks/bench_neural.py --sample-rows 5000 --sides-dir /tmp/neural24/sides2 --models tvae --anchors tvae --reuse sdv_tvae"
$B --datasets-only flights --max-rows 5000 --out /tmp/neural24/bench2_flights.json
$B --datasets-only default,covid,planes --out /tmp/neural24/bench2_A.json
