"""`caseledger up` removes the stack file a dead `up` left, and never the file of one that runs
(`status` and `keys` in another terminal find the stack through it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.stack import clear_stale_stack_env


def _written_by(path: Path, pid: int) -> None:
    path.write_text(f"# written by caseledger up, pid {pid}\nDATABASE_URL=postgresql://x\n")


def test_the_file_of_a_running_up_is_kept_and_the_second_up_refused(tmp_path: Path) -> None:
    stack_env = tmp_path / "stack.env"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _written_by(stack_env, alive.pid)
        with pytest.raises(RuntimeError, match=f"pid {alive.pid}"):
            clear_stale_stack_env(stack_env)
        assert stack_env.exists()
    finally:
        alive.kill()
        alive.wait()


def test_the_file_of_a_dead_up_is_removed(tmp_path: Path) -> None:
    stack_env = tmp_path / "stack.env"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _written_by(stack_env, gone.pid)
    clear_stale_stack_env(stack_env)
    assert not stack_env.exists()


@pytest.mark.parametrize("text", ["DATABASE_URL=x\n", ""], ids=["older-format", "empty"])
def test_a_file_without_an_owner_is_removed(tmp_path: Path, text: str) -> None:
    stack_env = tmp_path / "stack.env"
    stack_env.write_text(text)
    clear_stale_stack_env(stack_env)
    assert not stack_env.exists()


def test_its_own_file_does_not_stop_up(tmp_path: Path) -> None:
    stack_env = tmp_path / "stack.env"
    _written_by(stack_env, os.getpid())
    clear_stale_stack_env(stack_env)
    assert not stack_env.exists()
