#!/bin/bash
# score split/PREFIX_s*.parquet against the split's holdout: $@ prefixes
cd /tmp/ctgan24
d=/tmp/ctgan23/split/covid; ex="subject_id,fake_first_name,fake_last_name"
for p in "$@"; do
syn=""; for f in split/${p}_s*.parquet; do b=$(basename $f .parquet); syn="$syn --synthetic $b=$f"; done
~/.cache/anchors/sdv/bin/python /work/wt-dv/benchmarks/_ml_scores.py --train $d/train.csv --holdout $d/holdout.csv --target result --task classification $syn --exclude "$ex" --seed 0 --result-out split/ml_$p.json > /dev/null
python3 -c "
import json; r=json.load(open('split/ml_$p.json')); ds=[];ts=[]
for k,v in sorted(r['models'].items()):
    ds.append(v['detection_auc']); ts.append(v['tstr_over_trtr'] or 0)
print('$p', 'det', ' '.join('%.3f'%x for x in ds), 'mean %.3f'%(sum(ds)/len(ds)), '| tstr/trtr', ' '.join('%.3f'%x for x in ts), 'mean %.4f'%(sum(ts)/len(ts)), flush=True)"
done
