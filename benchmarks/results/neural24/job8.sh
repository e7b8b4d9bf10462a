cd /work/wt-nn
.venv/bin/python /tmp/neural24/bitcheck.py default,churn,ames 2>&1 | grep -v Warn
.venv/bin/python /tmp/neural24/ident.py tvae:default:8 tvae:churn:4 2>&1 | grep -v Warn
.venv/bin/python -m pytest -q -x tests/test_neural.py tests/test_privacy.py tests/test_federated.py tests/test_contract.py tests/test_conditions.py tests/test_federated_deploy.py -k "tvae" 2>&1 | tail -2
.venv/bin/python -m pytest -q -x tests/test_pii.py tests/test_federated_sequence.py -k "tvae or DP or dp or federat" 2>&1 | tail -2
