cd /work/wt-nn
.venv/bin/python /tmp/neural24/ab3.py default 12 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ab3.py covid 4 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ab3.py flights 2 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ab3.py churn 6 2>&1 | grep -v Warn
