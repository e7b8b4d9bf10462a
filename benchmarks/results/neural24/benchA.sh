cd /work/wt-nn
B=".venv/bin/python benchmarks/bench_neural.py --sample-rows 5000 --sides-dir /tmp/neural24/sides --models tvae --anchors tvae --reuse sdv_tvae"
$B --datasets-only flights --max-rows 5000 --out /tmp/neural24/bench_flights.json
$B --datasets-only default,covid,planes --out /tmp/neural24/bench_A.json
