cd /work/wt-nn
B=".venv/bin/python benchmarks/bench_neural.py --sample-rows 5000 --sides-dir /tmp/neural24/sides3 --models tvae --anchors tvae --reuse sdv_tvae"
$B --datasets-only default --out /tmp/neural24/bench3_default.json
$B --datasets-only flights --max-rows 5000 --out /tmp/neural24/bench3_flights.json
.venv/bin/python /tmp/neural24/ab3.py default 12 2>&1 | grep -v Warn
