cd /work/wt-ar
/work/heavy .venv/bin/python /tmp/ar23/screen2.py weather,airports '[{"label":"base"},{"label":"rev","order":"reverse"},{"label":"rev","fit_seed":1,"order":"reverse"}]' > /tmp/ar23/job6.log 2>&1
echo done >> /tmp/ar23/job6.log
