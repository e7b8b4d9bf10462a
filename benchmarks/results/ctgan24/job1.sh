set -e
cd /tmp/ctgan24
P=/work/wt-dv/.venv/bin/python
$P fitsave.py main 0 '{}'
$P variants.py models/main_f0 main_f0
cmp <(md5sum < split/main_f0_s0.parquet) <(md5sum < /tmp/ctgan23/split/covid/e316_f0_s0.parquet) && echo "equals session-23 draw" || echo "DIFFERS from session-23 draw"
A=~/.cache/anchors/sdv/bin/python
$A cond2.py base=split/main_f0_s0.parquet nobias=split/main_f0_nobias_s0.parquet condinv=split/main_f0_condinv.parquet
$A /tmp/ctgan23/perclass2.py /tmp/ctgan23/split/covid base=split/main_f0_s0.parquet nobias=split/main_f0_nobias_s0.parquet
