cd /tmp/ctgan23
P=~/.cache/anchors/sdv/bin/python
$P perclass2.py /tmp/ctgan23/sides/covid ours160=/tmp/neural21/sides/covid/ctgan.parquet ours250=/tmp/ctgan23/sides/covid/ctgan.parquet sdv=/tmp/ctgan23/sides/covid/sdv_ctgan.parquet
$P perclass2.py /tmp/ctgan23/split/covid e160_f0=split/covid/base_f0_s0.parquet e316_f0=split/covid/e316_f0_s0.parquet e160_f1=split/covid/base_f1_s0.parquet e316_f1=split/covid/e316_f1_s0.parquet
