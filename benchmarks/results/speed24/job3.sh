cd /work/wt-qa
for r in 1 2; do
PYTHONPATH=/tmp/speed24/prev/src .venv/bin/python /tmp/speed24/t1.py prev
.venv/bin/python /tmp/speed24/t1.py fine
PYTHONPATH=/tmp/speed24/single/src .venv/bin/python /tmp/speed24/t1.py single
done
.venv/bin/python -m pytest -q -x tests/test_autoregressive.py tests/test_conditions.py 2>&1 | tail -3
