import twinforge
import twinforge.models
import twinforge.transforms


def test_all_names_exist_and_are_public():
    for module in (twinforge, twinforge.models, twinforge.transforms):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
            assert not name.startswith("_") or name == "__version__"


def test_core_api_is_exported():
    for name in ("create", "load", "available_models", "Metadata", "load_demo", "TwinforgeError"):
        assert name in twinforge.__all__


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, twinforge; twinforge.available_models(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
