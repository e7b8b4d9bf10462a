T=/work/wt-ar/.venv/bin/twinforge
$T sample m --rows 300 --where "sched=1200..1300" --out w.csv --seed 1 >/dev/null 2>&1; echo where rc=$?
$T sample m --rows 300 --where "hour=7" --out w2.csv --seed 1 >/dev/null 2>&1; echo where2 rc=$?
$T impute m --data miss.csv --out imp.csv --seed 0 >/dev/null 2>&1; echo impute rc=$?
/work/wt-ar/.venv/bin/python - <<'P'
import pandas as pd
def rel(o):
    m = 60*(o.dep//100)+o.dep%100; s = 60*(o.sched//100)+o.sched%100; k = o.delay.notna() & o.dep.notna()
    return round((o.sched == 100*o.hour+o.minute).mean(),3), round(((m-s-o.delay)[k] % 1440 == 0).mean(),3)
for f in ["w.csv", "w2.csv", "r.csv", "imp.csv"]:
    o = pd.read_csv(f); print(f, rel(o) if f != "imp.csv" else rel(o.head(20)), o.sched.between(1200,1300).mean() if f=="w.csv" else "", o.g.value_counts(normalize=True).round(2).to_dict() if f=="r.csv" else "")
P
