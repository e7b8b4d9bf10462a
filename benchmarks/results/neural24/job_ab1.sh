cd /work/wt-nn
for i in 1 2 3; do
PYTHONPATH=/tmp/neural24/src_base/src .venv/bin/python /tmp/neural24/ident.py tvae:default:0 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py tvae:default:0 2>&1 | grep -v Warn
done
PYTHONPATH=/tmp/neural24/src_base/src .venv/bin/python /tmp/neural24/ident.py tvae:flights:0 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py tvae:flights:0 2>&1 | grep -v Warn
