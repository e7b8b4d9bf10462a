cd /work/wt-qa
date -u; uptime
PYTHONPATH=/tmp/speed24/base/src .venv/bin/python /tmp/speed24/ab.py before
.venv/bin/python /tmp/speed24/ab.py after
PYTHONPATH=/tmp/speed24/base/src .venv/bin/python /tmp/speed24/ab.py before
.venv/bin/python /tmp/speed24/ab.py after
date -u
.venv/bin/python benchmarks/bench_auto.py --datasets ../shared/datasets --datasets-only ames,flights --anchors none --max-minutes 6 --out /tmp/speed24/auto.json
date -u
