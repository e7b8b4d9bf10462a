cd /work/wt-qa
for r in 1 2; do
PYTHONPATH=/tmp/speed23b/A2/src .venv/bin/python /tmp/speed23b/t1.py A2
PYTHONPATH=/tmp/speed23b/D/src .venv/bin/python /tmp/speed23b/t1.py D
done
.venv/bin/python /tmp/speed23b/first.py plain
.venv/bin/python /tmp/speed23b/first.py block
ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 .venv/bin/python /tmp/speed23b/first.py nocache
