#!/bin/bash
# score samples DIR/PREFIX_s*.parquet against DIR/train.csv, DIR/holdout.csv: $1 dir, $2 target, $3 prefix, $4 task
d=$1; ex=$(python3 -c "import json;print(','.join(json.load(open('$d/exclude.json'))['exclude']))")
syn=""; for f in $d/$3_s*.parquet; do b=$(basename $f .parquet); syn="$syn --synthetic $b=$f"; done
~/.cache/anchors/sdv/bin/python /work/wt-nn/benchmarks/_ml_scores.py --train $d/train.csv --holdout $d/holdout.csv --target $2 --task $4 $syn --exclude "$ex" --seed 0 --result-out $d/ml_$3.json > /dev/null
python3 -c "
import json; r=json.load(open('$d/ml_$3.json')); ds=[];ts=[]
for k,v in r['models'].items():
    print(k, 'detect %.3f' % v['detection_auc'], 'tstr/trtr %.3f' % (v['tstr_over_trtr'] or 0)); ds.append(v['detection_auc']); ts.append(v['tstr_over_trtr'] or 0)
print('$3 MEAN detect %.3f tstr/trtr %.3f' % (sum(ds)/len(ds), sum(ts)/len(ts)))"
