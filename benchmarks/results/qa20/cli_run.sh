T=/work/wt-ar/.venv/bin/twinforge
$T fit t.csv --out m --param epochs=1 --param progress=false --seed 0 >/dev/null 2>fit.err; echo fit rc=$?
$T info m 2>&1 | grep -i -E "deriv|dep|sched" | head -5
$T sample m --rows 300 --where "sched>=1200" --where "sched<=1300" --out w.csv --seed 1 2>&1 | tail -1; echo rc=$?
$T sample m --rows 300 --rebalance "g=x:0.8,y:0.1,z:0.1" --out r.csv --seed 1 2>&1 | tail -1; echo rc=$?
$T impute m miss.csv --out imp.csv --seed 0 2>&1 | tail -1; echo rc=$?
