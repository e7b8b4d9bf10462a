cd /work/wt-ar
C='[{"label":"base"},{"label":"jc0.5","mod":{"_INPUT_JITTER":0.5}},{"label":"ls0.2","mod":{"_NEIGHBOUR_SMOOTHING":0.2}},{"label":"jc+ls","mod":{"_INPUT_JITTER":0.5,"_NEIGHBOUR_SMOOTHING":0.2}},{"label":"base","fit_seed":1},{"label":"jc0.5","fit_seed":1,"mod":{"_INPUT_JITTER":0.5}},{"label":"ls0.2","fit_seed":1,"mod":{"_NEIGHBOUR_SMOOTHING":0.2}},{"label":"jc+ls","fit_seed":1,"mod":{"_INPUT_JITTER":0.5,"_NEIGHBOUR_SMOOTHING":0.2}}]'
/work/heavy .venv/bin/python /tmp/ar23/screen2.py weather,airports,planes,churn "$C" > /tmp/ar23/job2.log 2>&1
echo done >> /tmp/ar23/job2.log
