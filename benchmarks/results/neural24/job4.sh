cd /work/wt-nn
.venv/bin/python /tmp/neural24/bitcheck.py default,churn,ames,weather 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py tvae:default:8 tvae:churn:4 tvae:ames:3 2>&1 | grep -v Warn
