set -e
cd /tmp/ctgan24
P=/work/wt-dv/.venv/bin/python
export PYTHONPATH=/tmp/ctgan24/src_final2/src
$P fitsave.py rmin 0 '{"epochs": 316}'
$P fitsave.py rmin 1 '{"epochs": 316}'
./score.sh rmin_f0 rmin_f1
