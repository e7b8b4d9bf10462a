cd /work/wt-qa
PYTHONPATH=/tmp/speed23b/base/src .venv/bin/python /tmp/speed23b/ab.py before
.venv/bin/python /tmp/speed23b/ab.py after
PYTHONPATH=/tmp/speed23b/base/src .venv/bin/python /tmp/speed23b/ab.py before
.venv/bin/python /tmp/speed23b/ab.py after
date -u
