"""The controller's private socket directory: fresh and private for each start, and what a killed controller left
behind removed at the next start (a charger restarted by SIGKILL for months must not fill its temp directory)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ccs_sim.front.process import PRIVATE_DIR_PREFIX, private_socket_dir, remove_stale_socket_dirs


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def ended_process_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_new_private_dir_is_named_for_this_process_and_only_its_user_may_enter(temp_dir: Path) -> None:
    made = Path(private_socket_dir())
    assert made.parent == temp_dir and made.name.startswith(f"{PRIVATE_DIR_PREFIX}{os.getpid()}-")
    assert made.stat().st_mode & 0o777 == 0o700


def test_dirs_of_ended_controllers_are_removed_at_the_next_start_and_running_ones_kept(temp_dir: Path) -> None:
    left_by_a_killed_one = temp_dir / f"{PRIVATE_DIR_PREFIX}{ended_process_pid()}-abc123"
    left_by_a_killed_one.mkdir()
    (left_by_a_killed_one / "controller.sock").write_bytes(b"")
    of_a_running_one = temp_dir / f"{PRIVATE_DIR_PREFIX}{os.getppid()}-def456"
    of_a_running_one.mkdir()
    not_ours = temp_dir / f"{PRIVATE_DIR_PREFIX}notapid-x"
    not_ours.mkdir()

    made = Path(private_socket_dir())

    assert not left_by_a_killed_one.exists()
    assert of_a_running_one.is_dir() and not_ours.is_dir() and made.is_dir()
    assert remove_stale_socket_dirs() == [], "nothing else is stale: this process and its parent run"
