"""Files written whole or not at all, also where Windows holds a file for a moment: a virus scanner reading a file
just written, the search indexer or a cloud drive's sync client makes `os.replace` fail with "being used by another
process" (the operating system's answer is played here; this machine is not Windows)."""

from __future__ import annotations

import os

import pytest

from hypersd_desktop.core import files


def held_for(calls: int, real=os.replace):
    """`os.replace` as Windows answers while another program holds the file: refused `calls` times, then done."""
    tries = []

    def replace(source, target):
        tries.append(target)
        if len(tries) <= calls:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        real(source, target)

    return replace, tries


def test_a_file_held_a_moment_by_another_program_is_written_when_it_lets_go(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    target.write_text("old")
    replace, tries = held_for(3)
    monkeypatch.setattr(files, "LOCK_RETRY", True)
    monkeypatch.setattr(files.os, "replace", replace)
    files.write_atomic(target, "new")
    assert target.read_text() == "new" and len(tries) == 4
    assert [path.name for path in tmp_path.iterdir()] == ["settings.json"]  # no partial file left


def test_a_file_held_on_is_reported_and_left_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    target.write_text("old")
    replace, tries = held_for(10**6)
    monkeypatch.setattr(files, "LOCK_RETRY", True)
    monkeypatch.setattr(files, "LOCK_RETRY_S", 0.2)
    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(PermissionError, match="being used by another process"):
        files.write_atomic(target, "new")
    assert target.read_text() == "old" and 2 < len(tries) < 20
    assert [path.name for path in tmp_path.iterdir()] == ["settings.json"]


def test_elsewhere_a_refused_rename_is_not_tried_again(tmp_path, monkeypatch):
    """On macOS and Linux a permission error is the folder's or the file's, and stays: said at once."""
    replace, tries = held_for(1)
    monkeypatch.setattr(files, "LOCK_RETRY", False)
    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(PermissionError):
        files.write_atomic(tmp_path / "a.txt", "text")
    assert len(tries) == 1 and not list(tmp_path.iterdir())
