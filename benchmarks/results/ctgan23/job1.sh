set -e
cd /tmp/ctgan23
P=/work/wt-dd/.venv/bin/python
$P fit.py base 1 '{}'
$P fit.py e250 0 '{"epochs": 250}'
$P fit.py e250 1 '{"epochs": 250}'
./score.sh split/covid result classification base_f0 base_f1 e250_f0 e250_f1
