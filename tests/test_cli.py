"""The `dynsal` command: every registered subcommand loads, has help with an example, and runs."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from dynsal.cli import COMMANDS, build_parser, main
from dynsal.errors import warn
from tests.predict.helpers import zoo_weights


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_module_and_help(name, capsys):
    module = importlib.import_module(f"dynsal.commands.{COMMANDS[name][0]}")
    assert callable(module.add_arguments) and callable(module.run)
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"\n  dynsal {name} " in capsys.readouterr().out  # an example command line in the description


def test_top_level_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_suggests(capsys):
    with pytest.raises(SystemExit):
        main(["evl"])
    assert "did you mean eval?" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_shows_the_defaults_and_quiet(name):
    """Every option with a default says it in --help (argparse's %(default)s or the help text)."""
    parser = build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    formatter = sub._get_formatter()
    for action in sub._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default" in formatter._get_help_string(action), f"{name} {action.option_strings[0]}"
    assert "--quiet" in sub.format_help()


def test_predict_help_shows_device_auto_and_batch(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "auto (the GPU when there is one), cpu, cuda or cuda:<i> (default: auto)" in text
    assert "frames per forward pass (default: 1)" in text and "(default: fp32)" in text


def test_a_missing_optional_package_is_one_line_with_the_install_command(tmp_path):
    """As after `pip install dynsal` without torch: predict says how to install it, no traceback."""
    pytest.importorskip("torch", reason="the test's weights file is written by the torch engine")
    weights = zoo_weights("ssnet", tmp_path)
    (tmp_path / "still.png").write_bytes(b"")
    code = ("import sys; sys.modules['torch'] = None; from dynsal.cli import main; "
            f"sys.exit(main(['predict', '--net', 'ssnet', '--weights', {str(weights)!r}, "
            f"'--engine', 'torch', {str(tmp_path / 'still.png')!r}, '-o', {str(tmp_path / 'out')!r}]))")
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == ["dynsal predict: error: this needs torch, which is not installed here: "
                                          "pip install torch (CPU; for a GPU pick the build for your CUDA at "
                                          "pytorch.org/get-started), or pip install \"dynsal[torch]\""]


def test_a_library_warning_is_one_line_and_others_keep_their_format(monkeypatch, capsys):
    """Library code warns with DynsalWarning (dynsal.errors.warn); a command prints it as one line."""
    def run(args):
        warn("engine auto runs torch, not caffe: no pycaffe")
        warnings.warn("a library's own warning", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(importlib.import_module("dynsal.commands.info"), "run", run)
    assert main(["info", "net.prototxt"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dynsal: warning: engine auto runs torch, not caffe: no pycaffe"
    assert "UserWarning: a library's own warning" in err[1]
