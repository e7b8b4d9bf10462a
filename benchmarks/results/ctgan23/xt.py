import pandas as pd, numpy as np, sys
d="/tmp/neural21/sides/covid"
tr=pd.read_csv(f"{d}/train.csv"); ho=pd.read_csv(f"{d}/holdout.csv")
ours=pd.read_parquet(f"{d}/ctgan.parquet"); sdv=pd.read_parquet(f"{d}/sdv_ctgan.parquet")
sets={"real":tr,"ours":ours,"sdv":sdv}
print(tr.dtypes)
for k,v in sets.items(): print(k, v.result.value_counts(normalize=True).round(4).to_dict())
def show(col, f=lambda s:s):
    print("==",col)
    rows=[]
    for k,v in sets.items():
        t=pd.crosstab(f(v[col]), v.result, normalize="index").round(3)
        n=f(v[col]).value_counts(normalize=True).round(3)
        t["share"]=n; t.columns=[f"{k}:{c}" for c in t.columns]; rows.append(t)
    print(pd.concat(rows,axis=1).head(15).to_string())
show("ct_result", lambda s: pd.cut(s,[-1,20,30,40,44.99,45.01,100]))
for c in ["patient_class","orderset","drive_thru_ind","payor_group","clinic_name","demo_group","test_id","gender"]:
    show(c)
show("age", lambda s: pd.cut(s,[-1,1,5,12,18,200]))
show("pan_day", lambda s: pd.cut(s,[-1,10,30,60,80,200]))
show("col_rec_tat", lambda s: pd.qcut(tr.col_rec_tat,5,retbins=True,duplicates="drop")[1] is not None and pd.cut(s,[-1e9,0.5,1,2,5,20,1e9]))
show("rec_ver_tat", lambda s: pd.cut(s,[-1e9,2,5,10,20,50,1e9]))
