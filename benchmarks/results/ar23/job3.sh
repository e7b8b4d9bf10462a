cd /work/wt-ar
C='[{"label":"base","temps":[1.0,1.3,1.6]},{"label":"nb16","n_bins":16},{"label":"nb8","n_bins":8},{"label":"w64","width":64},{"label":"base","fit_seed":1,"temps":[1.0,1.3,1.6]},{"label":"nb16","fit_seed":1,"n_bins":16},{"label":"nb8","fit_seed":1,"n_bins":8},{"label":"w64","fit_seed":1,"width":64}]'
/work/heavy .venv/bin/python /tmp/ar23/screen2.py airports,weather "$C" > /tmp/ar23/job3.log 2>&1
/work/heavy .venv/bin/python /tmp/ar23/screen2.py ames '[{"label":"base","temps":[1.0,1.3]},{"label":"nb16","n_bins":16}]' >> /tmp/ar23/job3.log 2>&1
echo done >> /tmp/ar23/job3.log
