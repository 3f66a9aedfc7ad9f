"""Shared set-up for openmla's Python tests.

Every test needs an sm_90 GPU and the installed package (`pip install
--no-build-isolation ./python`); without them the whole suite skips with one
clear line. The installed package is what is tested: the source folder
python/ is taken off sys.path (``python -m pytest`` run from python/ puts it
first, and its openmla/ has no compiled extension).
"""
import os
import sys

import pytest

_PKG_SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _PKG_SRC]

_SKIP_REASON = None
try:
    import torch
except ImportError:  # pragma: no cover
    _SKIP_REASON = "no GPU tests: PyTorch is not installed"
else:
    if not torch.cuda.is_available():
        _SKIP_REASON = "no GPU: openmla's Python tests need CUDA (torch.cuda.is_available() is False)"
    elif torch.cuda.get_device_capability()[0] != 9:
        _SKIP_REASON = (f"no sm_90 GPU: openmla's kernels are built for sm_90a, this is "
                        f"{torch.cuda.get_device_name()} (sm_{''.join(map(str, torch.cuda.get_device_capability()))})")

if _SKIP_REASON is None:
    # A GPU is here, so the package must import: failing to is an error, not a skip.
    import openmla  # noqa: F401

    if os.path.dirname(os.path.dirname(os.path.abspath(openmla.__file__))) == _PKG_SRC:
        raise ImportError(
            f"openmla was imported from the source folder {_PKG_SRC}, not from the installed "
            "package; run pytest from the repository root (pytest python/tests)")


def pytest_report_header(config):
    if _SKIP_REASON:
        return f"openmla: SKIPPING ALL: {_SKIP_REASON}"
    import openmla
    return (f"openmla {openmla.__version__} from {os.path.dirname(openmla.__file__)}; torch "
            f"{torch.__version__}; {torch.cuda.get_device_name()}")


def pytest_collection_modifyitems(config, items):
    if _SKIP_REASON:
        print(f"\n{_SKIP_REASON}", file=sys.stderr)
        marker = pytest.mark.skip(reason=_SKIP_REASON)
        for item in items:
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def _seed_and_check_errors():
    if _SKIP_REASON:
        yield
        return
    torch.manual_seed(0)
    yield
    torch.cuda.synchronize()  # surface asynchronous CUDA errors in the test that caused them
