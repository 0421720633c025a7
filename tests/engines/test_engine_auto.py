"""`engine="auto"` imports pycaffe for real: a `caffe` package whose extension does not load (or that
crashes while importing) makes it torch, with one warning line naming why; a working one makes it
caffe; none makes it torch silently."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from dynsal import engines
from dynsal.engines import load_net, pick_engine
from dynsal.engines.pycaffe_probe import pycaffe_problem
from dynsal.errors import DynsalError, DynsalWarning
from tests.engines.test_net import _net

BROKEN_EXTENSION = "from ._caffe import Net  # the compiled extension, here a file that is no ELF object\n"
CRASHING = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
WORKING = "TRAIN, TEST = 0, 1\n"


def _stub_caffe(root, init: str, extension: bytes | None = None):
    package = root / "caffe"
    package.mkdir()
    (package / "__init__.py").write_text(init)
    if extension is not None:
        (package / "_caffe.so").write_bytes(extension)
    return root


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    """Each test probes anew and may warn once."""
    monkeypatch.setattr(engines, "_warned_broken_pycaffe", False)
    pycaffe_problem.cache_clear()
    yield
    pycaffe_problem.cache_clear()


@pytest.fixture()
def caffe_on_path(tmp_path, monkeypatch):
    """Put a stub `caffe` package first on this process's and the probe's import path."""

    def install(init: str, extension: bytes | None = None):
        root = _stub_caffe(tmp_path, init, extension)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        return root

    return install


def test_auto_falls_back_to_torch_when_the_extension_does_not_load(caffe_on_path):
    root = caffe_on_path(BROKEN_EXTENSION, extension=b"not a shared object\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert pick_engine("auto") == "torch"
        assert pick_engine("auto") == "torch"
    assert [w.category for w in caught] == [DynsalWarning]  # once per process
    message = str(caught[0].message)
    assert message.startswith("engine auto runs torch, not caffe: `import caffe`") and "\n" not in message
    assert str(root / "caffe") in message and "ImportError" in message


def test_auto_falls_back_when_the_import_crashes(caffe_on_path):
    caffe_on_path(CRASHING)
    with pytest.warns(DynsalWarning, match="killed by signal SIGSEGV"):
        assert pick_engine("auto") == "torch"


def test_auto_loads_a_torch_net_past_a_broken_pycaffe(caffe_on_path):
    pytest.importorskip("torch", reason="the torch engine needs torch")
    caffe_on_path(BROKEN_EXTENSION, extension=b"\x7fELF broken")
    with pytest.warns(DynsalWarning, match="engine auto runs torch, not caffe"):
        net = load_net(_net(), engine="auto", seed=0)
    assert type(net).__name__ == "TorchNet"


def test_explicit_caffe_engine_names_why_it_cannot_run(caffe_on_path):
    caffe_on_path(BROKEN_EXTENSION, extension=b"")
    with pytest.raises(DynsalError, match=r"the caffe engine needs pycaffe: `import caffe` .* fails: ImportError"):
        load_net(_net(), engine="caffe")


def test_auto_picks_a_pycaffe_that_imports(caffe_on_path, capsys):
    caffe_on_path(WORKING)
    assert pick_engine("auto") == "caffe"
    assert capsys.readouterr().err == ""


def test_no_pycaffe_is_torch_without_a_warning(capsys):
    code = textwrap.dedent("""
        import sys
        sys.modules["caffe"] = None  # as if no caffe were installed anywhere on the path
        from dynsal.engines import pick_engine
        from dynsal.engines.pycaffe_probe import pycaffe_problem
        print(pick_engine("auto"), pycaffe_problem())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "torch no module named 'caffe'"
    assert result.stderr == ""
