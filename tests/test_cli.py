"""The command line: every sub-command answers --help, and bad requests fail clearly."""
import subprocess
import sys
from pathlib import Path

import pytest

from minivod.cli import build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"generate-data", "evaluate", "train", "eval", "demo"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: minivod " + name in capsys.readouterr().out


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "minivod", "--help"], capture_output=True, text=True, check=True)
    assert "generate-data" in out.stdout and "demo" in out.stdout


def test_eval_without_a_shipped_checkpoint_says_what_to_do(capsys, data_small):
    code = main(["eval", "--method", "baseline", "--checkpoint", "/nonexistent/ckpt.pt", "--data", str(data_small)])
    assert code == 2
    assert "/nonexistent/ckpt.pt: checkpoint not found" in capsys.readouterr().err


def test_unknown_method_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--method", "yolo"])
    assert "invalid choice: 'yolo'" in capsys.readouterr().err


def test_the_method_list_of_the_docs_is_the_registry():
    """docs/commands.md names every registered method, and nothing else that looks like one."""
    import re

    from minivod.methods import METHODS

    text = (Path(__file__).resolve().parents[1] / "docs" / "commands.md").read_text()
    listed = set(re.findall(r"`([a-z0-9_]+)`", text[text.index("Methods:"):text.index("python -m minivod train --help")]))
    assert listed == set(METHODS), {"missing": set(METHODS) - listed, "unknown": listed - set(METHODS)}
