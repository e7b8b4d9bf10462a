"""P(column | result=invalid) of real split rows against sets label=parquet"""
import sys, pandas as pd, numpy as np
tr=pd.read_csv("/tmp/ctgan23/split/covid/train.csv")
sets={"real":tr, **{a.split("=")[0]: pd.read_parquet(a.split("=")[1]) for a in sys.argv[1:]}}
print({k:len(v) for k,v in sets.items()})
print(pd.DataFrame({k:v.result.value_counts(normalize=True) for k,v in sets.items()}).round(4).to_string())
for c in ["clinic_name","demo_group","drive_thru_ind","orderset","payor_group","patient_class"]:
    tabs={k:v[v.result=="invalid"][c].astype(str).replace("None","nan").value_counts(normalize=True) for k,v in sets.items()}
    print("==",c); print(pd.DataFrame(tabs).fillna(0).round(3).sort_values("real",ascending=False).head(6).to_string())
for c in ["rec_ver_tat","col_rec_tat","age","ct_result"]:
    print("==",c, "median / 10% / 90% / nan share of invalid rows")
    for k,v in sets.items():
        s=v[v.result=="invalid"][c]; print(f"  {k:14s} {s.median():6.1f} {s.quantile(.1):6.1f} {s.quantile(.9):6.1f} {s.isna().mean():.2f}")
