cd /tmp/ctgan24
export PYTHONPATH=/tmp/ctgan24/src_min/src MIN_ROWS=100
P=/work/wt-dv/.venv/bin/python
A=~/.cache/anchors/sdv/bin/python
for t in planes:seats:regression ames:Sale_Price:regression airports:alt:regression; do
  n=${t%%:*}; r=${t#*:}; tg=${r%%:*}; task=${r#*:}
  $P varfit.py $n min/$n 0
  ex=$(python3 -c "import json;print(','.join(json.load(open('/tmp/ctgan24/bench_default_airports_planes.json' if '$n' in ('planes','airports') else '/tmp/ctgan24/bench_ames_flights.json'))['results']['$n']['excluded']))")
  $A /work/wt-dv/benchmarks/_ml_scores.py --train sides/$n/train.csv --holdout sides/$n/holdout.csv --target $tg --task $task --synthetic min=min/$n/ctgan_s0.parquet --exclude "$ex" --seed 0 --result-out min/$n/ml.json > /dev/null
  python3 -c "import json; r=json.load(open('min/$n/ml.json'))['models']['min']; print('$n min100', 'det %.5f tstr/trtr %.3f' % (r['detection_auc'], r['tstr_over_trtr']), flush=True)"
done
$P varfit.py covid min/covid 0,1,2
cp sides/covid/train.csv sides/covid/holdout.csv min/covid/
./scoreb.sh /tmp/ctgan24/min/covid result
