set -e
cd /tmp/ctgan24
P=/work/wt-dv/.venv/bin/python
A=~/.cache/anchors/sdv/bin/python
$P fitsave.py e316 0 '{"epochs": 316}'
$A -c "import pandas as pd; print('equals session-23 e316_f0 draw:', pd.read_parquet('split/e316_f0_s0.parquet').equals(pd.read_parquet('/tmp/ctgan23/split/covid/e316_f0_s0.parquet')))"
$P redraw.py models/e316_f0 e316_f0
$P redraw.py models/e316_f0 e316_f0 0.05
./score.sh e316_f0_rrall e316_f0_rr5
$A cond2.py base=split/e316_f0_s0.parquet rrall=split/e316_f0_rrall_s0.parquet rr5=split/e316_f0_rr5_s0.parquet
$A /tmp/ctgan23/perclass2.py /tmp/ctgan23/split/covid base=split/e316_f0_s0.parquet rrall=split/e316_f0_rrall_s0.parquet rr5=split/e316_f0_rr5_s0.parquet
