"""Anchor venv only: fit SDV CTGAN (defaults, as _sdv_anchor.py side at seed 0) on DIR/train.csv; sample len(train)
rows at sampling seeds 0,1,2 into DIR/sdv_ctgan_s{k}.parquet. argv: dir"""
import sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from sdv.metadata import Metadata
import sdv.single_table as st
d = sys.argv[1]
df = pd.read_csv(f"{d}/train.csv")
md = Metadata.detect_from_dataframes({"t": df})
np.random.seed(0); torch.manual_seed(0)
SYN = sys.argv[2] if len(sys.argv) > 2 else "CTGAN"
s = getattr(st, f"{SYN}Synthesizer")(md)
c0 = time.process_time(); s.fit({"t": df}); print(f"sdv ctgan fit cpu {time.process_time() - c0:.1f} s", flush=True)
for k in (0, 1, 2):
    s.reset_sampling(); s._set_random_state(k)
    s.sample(len(df))["t"].to_parquet(f"{d}/sdv_{SYN.lower()}_s{k}.parquet")
