cd /work/wt-nn
B=".venv/bin/python benchmarks/bench_neural.py --sample-rows 5000 --sides-dir /tmp/neural24/sides --models tvae --anchors tvae --reuse sdv_tvae"
$B --datasets-only churn,ames,airports,weather,basic_motions --out /tmp/neural24/bench_B.json
