cd /work/wt-nn
.venv/bin/python -m pytest -q -x tests/test_nn.py tests/test_neural.py tests/test_privacy.py tests/test_federated.py tests/test_contract.py -k "tvae or nn or adam or segment" 2>&1 | tail -3
.venv/bin/python /tmp/neural24/ident.py tvae:default:8 tvae:flights:3 2>&1 | grep -v Warn
