cd /work/wt-ar
/work/heavy .venv/bin/python /tmp/ar23/screen.py weather,airports,planes,churn '[{"label":"base","loo":true,"temps":[1.0,1.1]},{"label":"j0.3","mod":{"_INPUT_JITTER":0.3}},{"label":"j0.6","mod":{"_INPUT_JITTER":0.6}},{"label":"base","fit_seed":1},{"label":"j0.3","fit_seed":1,"mod":{"_INPUT_JITTER":0.3}},{"label":"j0.6","fit_seed":1,"mod":{"_INPUT_JITTER":0.6}}]' > /tmp/ar23/job1.log 2>&1
echo done >> /tmp/ar23/job1.log
