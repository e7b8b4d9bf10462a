#!/bin/bash
# score DIR/ctgan_s*.parquet with the bench's excluded columns: $1 dir $2 target
d=$1; t=$2; ex=${3:-subject_id,fake_first_name,fake_last_name,test_id}
syn=""; for f in $d/ctgan_s*.parquet; do b=$(basename $f .parquet); syn="$syn --synthetic $b=$f"; done
~/.cache/anchors/sdv/bin/python /work/wt-dv/benchmarks/_ml_scores.py --train $d/train.csv --holdout $d/holdout.csv --target $t --task classification $syn --exclude "$ex" --seed 0 --result-out $d/ml_ctgan.json > /dev/null
python3 -c "
import json; r=json.load(open('$d/ml_ctgan.json')); ds=[];ts=[]
for k,v in sorted(r['models'].items()):
    ds.append(v['detection_auc']); ts.append(v['tstr_over_trtr'] or 0)
print('$d', 'det', ' '.join('%.3f'%x for x in ds), 'mean %.3f'%(sum(ds)/len(ds)), '| tstr/trtr', ' '.join('%.3f'%x for x in ts), 'mean %.4f'%(sum(ts)/len(ts)), flush=True)"
