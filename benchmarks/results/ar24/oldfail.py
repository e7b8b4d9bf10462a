import sys
sys.path.insert(0, "/work/wt-ar")
import twinforge.models.autoregressive as ar
ar._DERIVE_SHARE, ar._SCREEN_SHARE = 0.99, 0.97
import tests.test_autoregressive as t
try:
    t.test_a_relation_with_one_and_a_half_percent_exceptions_is_derived()
    print("OLD CONSTANTS: test passed (bad)")
except AssertionError as e:
    print("OLD CONSTANTS: test fails as it should", repr(e)[:200])
