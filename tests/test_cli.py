"""The `dynsal` command: every registered subcommand loads, has help with an example, and runs."""
from __future__ import annotations

import importlib

import pytest

from dynsal.cli import COMMANDS, main


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
