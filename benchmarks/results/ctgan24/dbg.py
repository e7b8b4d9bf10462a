import twinforge, torch, numpy as np, pandas as pd
torch.set_num_threads(1)
rng=np.random.default_rng(0); n=2000
g=rng.choice(['common','usual','rare'], n, p=[0.6,0.37,0.03]); h=rng.choice(['x','y','z','w'], n, p=[0.5,0.3,0.16,0.04])
data=pd.DataFrame({'group':g,'h':h,'value':rng.normal(0,1,n)+np.where(g=='rare',5,0)})
for r in (0.0, 0.05):
    m=twinforge.create('ctgan', seed=0, epochs=20, batch_size=100, width=64, progress=False, rare_share=r).fit(data)
    out=m.sample(20000, seed=1)
    print(r, out.group.value_counts(normalize=True).round(4).to_dict(), out.h.value_counts(normalize=True).round(4).to_dict(), [np.round(b,2) for b in m.span_bias_])
