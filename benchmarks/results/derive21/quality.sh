set -e
P=~/.cache/anchors/sdv/bin/python
cd /work/wt-dv
for n in flights; do
  $P benchmarks/_sdv_anchor.py metadata --data /tmp/derive21/train_$n.csv --result-out /tmp/derive21/meta_$n.json
  EX=$($P -c "import json;print(','.join(json.load(open('/tmp/derive21/meta_$n.json'))['not_learned']))")
  $P benchmarks/_sdv_anchor.py quality --real /tmp/derive21/train_$n.csv --metadata-from /tmp/derive21/meta_$n.json \
    --synthetic=base=/tmp/derive21/base_$n.parquet --synthetic=br=/tmp/derive21/br_$n.parquet --exclude "$EX" --result-out /tmp/derive21/q_$n.json
  $P -c "import json;r=json.load(open('/tmp/derive21/q_$n.json'))['reports'];print('$n', {k: (round(v['overall'],4), {kk: round(vv,4) for kk, vv in v.items() if isinstance(vv, float)}) for k, v in r.items()})"
done
