#!/bin/bash
# score DIR/PREFIX*_s*.parquet: $1 dir $2 target $3 task $4.. prefixes
d=$1; t=$2; task=$3; shift 3
ex=$(python3 -c "import json;print(','.join(json.load(open('$d/exclude.json'))['exclude']))")
if [ -f $d/exclude_override ]; then ex=$(cat $d/exclude_override); fi  # the bench's own list
for p in "$@"; do
syn=""; for f in $d/${p}_s*.parquet; do b=$(basename $f .parquet); syn="$syn --synthetic $b=$f"; done
~/.cache/anchors/sdv/bin/python /work/wt-dd/benchmarks/_ml_scores.py --train $d/train.csv --holdout $d/holdout.csv --target $t --task $task $syn --exclude "$ex" --seed 0 --result-out $d/ml_$p.json > /dev/null
python3 -c "
import json; r=json.load(open('$d/ml_$p.json')); ds=[];ts=[]
for k,v in sorted(r['models'].items()):
    ds.append(v['detection_auc']); ts.append(v['tstr_over_trtr'] or 0)
print('$p', 'det', ' '.join('%.3f'%x for x in ds), 'mean %.3f'%(sum(ds)/len(ds)), '| tstr/trtr', ' '.join('%.3f'%x for x in ts), 'mean %.4f'%(sum(ts)/len(ts)), flush=True)"
done
