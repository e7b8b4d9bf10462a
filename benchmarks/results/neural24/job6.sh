cd /work/wt-nn
B=".venv/bin/python benchmarks/bench_neural.py --sample-rows 5000 --sides-dir /tmp/neural24/sides2 --models tvae --anchors tvae --reuse sdv_tvae"
$B --datasets-only churn,ames,airports,weather,basic_motions --out /tmp/neural24/bench2_B.json
for i in 1 2 3; do
PYTHONPATH=/tmp/neural24/src_base/src .venv/bin/python /tmp/neural24/ident.py tvae:default:0 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py tvae:default:0 2>&1 | grep -v Warn
done
