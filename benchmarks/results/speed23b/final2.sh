cd /work/wt-qa
date -u
.venv/bin/python benchmarks/bench_auto.py --datasets ../shared/datasets --datasets-only ames,flights --anchors none --max-minutes 6 --out /tmp/speed23b/auto2.json
date -u
PYTHONPATH=/tmp/speed23b/base/src .venv/bin/python /tmp/speed23b/ab.py before
.venv/bin/python /tmp/speed23b/ab.py after
date -u
