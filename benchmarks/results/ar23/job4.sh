cd /work/wt-ar
/work/heavy .venv/bin/python /tmp/ar23/split_eval.py ames /tmp/ar23/split_ames '{"label": "base", "fit_seed": 0}' '{"label": "t115", "reuse": "base", "temperature": 1.15}' '{"label": "t13", "reuse": "base", "temperature": 1.3}' > /tmp/ar23/job4.log 2>&1
/work/heavy .venv/bin/python /tmp/ar23/keys.py weather origin,day,hour >> /tmp/ar23/job4.log 2>&1
echo done >> /tmp/ar23/job4.log
