import sys, pandas as pd, numpy as np
d="/tmp/ctgan23/sides/covid"
tr=pd.read_csv(f"{d}/train.csv"); ours=pd.read_parquet("/tmp/ctgan23/benchseeds/ctgan_s0.parquet"); sdv=pd.read_parquet(f"{d}/sdv_ctgan.parquet")
sets={"real":tr,"ours":ours,"sdv":sdv}
print({k:v.result.value_counts(normalize=True).round(4).to_dict() for k,v in sets.items()})
for c in ["gender","clinic_name","demo_group","drive_thru_ind","orderset","payor_group","patient_class","pan_day"]:
    print("==",c)
    tabs={}
    for k,v in sets.items():
        tabs[k]=v[v.result=="invalid"][c].astype(str).value_counts(normalize=True)
    df=pd.DataFrame(tabs).fillna(0).round(3)
    df=df.sort_values("real",ascending=False).head(8)
    print(df.to_string())
q=[.05,.25,.5,.75,.95]
for c in ["rec_ver_tat","col_rec_tat","ct_result","age"]:
  print("==",c)
  for k,v in sets.items():
    for r in ["invalid","negative"]:
      s=v[v.result==r][c]
      print(f"{k:5s} {r:9s} n={len(s):5d} nan={s.isna().mean():.2f} q=", np.round(s.quantile(q).values,1))
