cd /work/wt-nn
A="tvae:default:8 tvae:churn:4 tvae:ames:3 tvae:flights:3 tvae:covid:2 ctgan:default:3 ddpm:default:3 ddpm:flights:2"
PYTHONPATH=/tmp/neural24/src_base/src .venv/bin/python /tmp/neural24/ident.py $A 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py $A 2>&1 | grep -v Warn
.venv/bin/python -m pytest -q -x tests/test_nn.py 2>&1 | tail -2
