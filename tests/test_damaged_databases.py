"""Damaged databases: detected on opening, kept aside (never deleted), a new one started with a
notice that says so; the gallery comes back from the image files with `gallery rebuild`."""

from __future__ import annotations

import os
import subprocess

import pytest
from PIL import Image

from cli_process import run_cli
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.metadata import ImageParameters, write_png
from hypersd_desktop.models.library import ModelLibrary

DAMAGE = {"empty": b"", "garbage": os.urandom(4096), "truncated": b"SQLite format 3\x00" + b"\x10\x00" * 20}


def run(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=120)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_gallery_is_kept_aside_and_a_new_one_started(app_home, damage):
    paths = AppPaths.default().ensure()
    database = paths.data / "gallery.sqlite3"
    database.write_bytes(DAMAGE[damage])
    result = run("gallery", "list")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"warning: The database {database} was damaged (")
    assert "`hypersd-desktop gallery rebuild`" in result.stderr and "The gallery is empty." in result.stdout
    (kept,) = paths.data.glob("gallery.sqlite3.damaged-*")
    assert kept.read_bytes() == DAMAGE[damage]  # kept as it was, for whoever wants to recover it
    assert run("gallery", "list").stderr == ""  # the new one is healthy: no second notice


def test_a_missing_database_is_simply_created(app_home):
    result = run("gallery", "list")
    assert result.returncode == 0 and result.stderr == ""
    assert not list(AppPaths.default().data.glob("*.damaged-*"))


def test_a_damaged_model_registry_says_the_files_are_untouched(app_home):
    paths = AppPaths.default().ensure()
    (paths.data / "models.sqlite3").write_bytes(b"not a database at all" * 100)
    result = run("models", "list")
    assert result.returncode == 0 and "was damaged" in result.stderr and "import or download them again" in result.stderr
    library = ModelLibrary(paths)
    assert library.registry.list() == []
    library.close()


def test_rebuild_brings_generated_images_back_with_their_requests(app_home):
    paths = AppPaths.default().ensure()
    request = {"prompt": "a lighthouse", "base_model": "/models/sd15", "seed": 7, "steps": 2}
    params = ImageParameters("a lighthouse", "", 2, "tcd", 0.0, 7, 64, 64, "sd15", None, (), request=request)
    write_png(Image.new("RGB", (64, 64)), paths.images / "one.png", params)
    Image.new("RGB", (8, 8)).save(paths.images / "plain.png")
    (paths.data / "gallery.sqlite3").write_bytes(b"")
    gallery = Gallery(paths)
    assert gallery.notice and "gallery rebuild" in gallery.notice
    report = gallery.rebuild()
    assert (report.added, report.failed) == (2, ())
    records = {os.path.basename(r.path): r for r in gallery.store.query().images}
    assert records["one.png"].source == "generated" and '"seed": 7' in records["one.png"].request
    assert records["plain.png"].source == "imported"
    gallery.close()
    assert run("gallery", "rebuild").stdout.startswith(f"rebuilt from {paths.images}: added 0, already in the gallery 2")
