set -e
cd /tmp/ctgan23
P=/work/wt-dd/.venv/bin/python
$P fit.py e316 0 '{"epochs": 316}'
$P fit.py e316 1 '{"epochs": 316}'
./score.sh split/covid result classification e316_f0 e316_f1
