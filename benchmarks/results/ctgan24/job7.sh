set -e
cd /tmp/ctgan24
export PYTHONPATH=/tmp/ctgan24/src_final/src
/work/wt-dv/.venv/bin/python seeds.py /tmp/ctgan24/sides/covid /tmp/ctgan24/benchseeds
./scoreb.sh /tmp/ctgan24/benchseeds result
~/.cache/anchors/sdv/bin/python cond2.py s0=benchseeds/ctgan_s0.parquet | head -6
