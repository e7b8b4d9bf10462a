cd /work/wt-qa
for r in 1 2; do
PYTHONPATH=/tmp/speed23b/A2/src .venv/bin/python /tmp/speed23b/first.py A2
PYTHONPATH=/tmp/speed23b/E/src .venv/bin/python /tmp/speed23b/first.py E
done
PYTHONPATH=/tmp/speed23b/E/src timeout 300 .venv/bin/python -m pytest -q -x -p no:cacheprovider tests/test_autoregressive.py tests/test_conditions.py 2>&1 | tail -3
date -u
