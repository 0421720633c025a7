"""The CI guard (tests/ci_guard.py) on scratch test suites run by an inner pytest: what must fail a CI run."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = "pytester"
REPO = Path(__file__).resolve().parents[1]

CONFTEST = '''
import pytest
from tests.ci_guard import (pytest_collection_modifyitems, pytest_collectreport, pytest_runtest_logreport,
                            pytest_sessionfinish, pytest_terminal_summary)

@pytest.fixture()
def oracle():
    return "a stand-in for the chroot"

@pytest.fixture()
def torchvision_python():
    return "a stand-in for the venv"

@pytest.fixture()
def bullseye_oracle():
    return "a stand-in for bullseye's chroot"

@pytest.fixture()
def caffe_cuda():
    return "a stand-in for the CUDA build's chroot"

@pytest.fixture()
def chromium():
    return "a stand-in for the browser"

@pytest.fixture()
def pdflatex():
    return "a stand-in for pdflatex"

@pytest.fixture()
def cpu_image():
    return "a stand-in for the CPU Docker image"

@pytest.fixture()
def slurm():
    return "a stand-in for the local cluster"
'''
PARITY = '''
import pytest

@pytest.mark.caffe_parity
def test_parity(oracle):
    pass

def test_raft(torchvision_python):
    pass
'''
PLATFORM_ONLY = '''
def test_platform(oracle):
    pass

def test_raft(torchvision_python):
    pass
'''
SKIPPED_MODULE = '''
import pytest
pytest.importorskip("a_module_that_is_not_installed")

@pytest.mark.caffe_parity
def test_parity_elsewhere(oracle):
    pass
'''
SKIPPED_PARITY_TEST = '''
import pytest

@pytest.mark.caffe_parity
def test_parity_skipped(oracle):
    pytest.skip("no chroot")
'''

SKIPPED_BULLSEYE_CHECK = '''
import pytest

def test_bullseye_stack(bullseye_oracle):
    pytest.skip("no chroot")
'''
CUDA_BUILD = '''
def test_cuda_build(caffe_cuda):
    pass

def test_array_job(slurm):
    pass

def test_in_the_image(cpu_image):
    pass
'''
IMAGE_SKIPPED = '''
import pytest

def test_cuda_build(caffe_cuda):
    pass

def test_in_the_image(cpu_image):
    pytest.skip("no buildah")
'''
REPORT_TOOLS = '''
def test_html_report(chromium):
    pass

def test_latex_table(pdflatex):
    pass
'''
SKIPPED_BROWSER = '''
import pytest

def test_html_report_elsewhere(chromium):
    pytest.skip("no chromium")
'''
SKIPPED_CLUSTER_TEST = '''
import pytest

def test_cluster_job(slurm):
    pytest.skip("no slurmctld")
'''


@pytest.fixture()
def run_suite(pytester, monkeypatch):
    """Run `modules` ({name: source}) with the guard's hooks; returns the inner run's result."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))

    def run(ci: bool, **modules):
        monkeypatch.setenv("CI", "true" if ci else "")
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(**modules)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider")

    return run


def test_a_complete_run_passes(run_suite):
    result = run_suite(True, test_parity=PARITY, test_cuda=CUDA_BUILD, test_reports=REPORT_TOOLS)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["real-Caffe parity tests: 1 passed, 0 skipped, 0 failed"])


@pytest.mark.parametrize("modules,line", [
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD, test_more_parity=SKIPPED_MODULE),
     "*CI=true: module skipped at collection: test_more_parity.py*a_module_that_is_not_installed*"),
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD, test_skip=SKIPPED_PARITY_TEST),
     "*CI=true: real-Caffe parity tests must run*"),
    (dict(test_platform=PLATFORM_ONLY, test_cuda=CUDA_BUILD), "*CI=true: no real-Caffe parity tests passed*"),
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD, test_bullseye=SKIPPED_BULLSEYE_CHECK),
     "*CI=true: tests in the Caffe chroot must run*"),
    (dict(test_parity=PARITY), "*CI=true: no CUDA + cuDNN Caffe build tests (CPU mode) passed*"),
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD, test_reports=REPORT_TOOLS, test_skip=SKIPPED_BROWSER),
     "*CI=true: report tests in headless Chromium must run*"),
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD), "*CI=true: no report tests in headless Chromium passed*"),
    (dict(test_parity=PARITY, test_cuda=IMAGE_SKIPPED, test_reports=REPORT_TOOLS),
     "*CI=true: tests in the Docker images must run*"),
    (dict(test_parity=PARITY), "*CI=true: no tests on the local SLURM cluster passed*"),
    (dict(test_parity=PARITY, test_cuda=CUDA_BUILD, test_reports=REPORT_TOOLS, test_cluster=SKIPPED_CLUSTER_TEST),
     "*CI=true: tests on the local SLURM cluster must run*"),
], ids=["module-skipped-at-collection", "parity-test-skipped", "platform-checks-only", "bullseye-check-skipped",
        "no-cuda-build-test", "browser-test-skipped", "no-browser-test", "image-test-skipped",
        "no-cluster-test", "cluster-test-skipped"])
def test_what_fails_ci(run_suite, modules, line):
    """A module skipped at collection, a skipped parity test, and chroot checks standing in for parity."""
    result = run_suite(True, **modules)
    assert result.ret == 1
    result.stdout.fnmatch_lines([line])


def test_outside_ci_skips_are_allowed(run_suite):
    result = run_suite(False, test_parity=PARITY, test_more_parity=SKIPPED_MODULE)
    assert result.ret == 0

