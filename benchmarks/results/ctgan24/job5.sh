set -e
cd /tmp/ctgan24
P=/work/wt-dv/.venv/bin/python
A=~/.cache/anchors/sdv/bin/python
export PYTHONPATH=/tmp/ctgan24/src_rrc/src
$P fitsave.py rrc 0 '{"epochs": 316}'
$P fitsave.py rrc 1 '{"epochs": 316}'
./score.sh rrc_f0 rrc_f1
$A cond2.py rrc_f0=split/rrc_f0_s0.parquet rrc_f1=split/rrc_f1_s0.parquet | head -8
$A /tmp/ctgan23/perclass2.py /tmp/ctgan23/split/covid rrc_f0=split/rrc_f0_s0.parquet rrc_f1=split/rrc_f1_s0.parquet
