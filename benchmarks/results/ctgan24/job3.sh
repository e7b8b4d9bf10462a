set -e
cd /tmp/ctgan24
P=/work/wt-dv/.venv/bin/python
A=~/.cache/anchors/sdv/bin/python
$P fitsave.py rr 0 '{"epochs": 316}'
$P fitsave.py rr 1 '{"epochs": 316}'
./score.sh rr_f0 rr_f1
$A cond2.py rr_f0=split/rr_f0_s0.parquet rr_f1=split/rr_f1_s0.parquet
$A /tmp/ctgan23/perclass2.py /tmp/ctgan23/split/covid rr_f0=split/rr_f0_s0.parquet rr_f1=split/rr_f1_s0.parquet
