"""Batch job files and requests as careless hands write them: each problem is one clear
`InputError` naming the item, found before anything is generated."""

from __future__ import annotations

import math

import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.gallery.export import check_template
from hypersd_desktop.worker.batch import parse_job, plan_units

DEFAULTS = GenerationRequest(prompt="", base_model="/models/sd15")


@pytest.mark.parametrize("name, content, complaint", [
    ("job.csv", "prompt,seed\na fox,abc\n", "Job item 1: seed 'abc' is not a whole number"),
    ("job.csv", "prompt,steps\na fox,many\n", "Job item 1: steps 'many' is not a whole number"),
    ("job.json", '[{"prompt": "a fox", ', "job.json is not valid JSON"),
    ("job.json", "[" * 100_000 + "]" * 100_000, "job.json is not valid JSON (nested too deeply)"),
    ("job.csv", "prompt\n" + "x" * 200_000 + "\n", "job.csv is not a CSV job file this app can read"),
    ("job.csv", "prompt,seeds\na fox,0-10000000000\n", "Job item 1: the seed range 0-10000000000 is over 100,000"),
    ("job.csv", "prompt,guidance\na fox,nan\n", "Job item 1: guidance 'nan' is not a number"),
    ("job.csv", "prompt,width\na fox,100000\n", "Job item 1: Width must be a multiple of 8 from 64 to 4096"),
])
def test_bad_job_files_are_clear_errors(tmp_path, name, content, complaint):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        plan_units(parse_job(path), DEFAULTS)
    assert complaint in str(raised.value)


def test_a_latin1_text_file_is_read(tmp_path):
    path = tmp_path / "job.txt"
    path.write_bytes("café au lait\nnaïve art\n".encode("latin-1"))
    assert [item["prompt"] for item in parse_job(path)] == ["café au lait", "naïve art"]


@pytest.mark.parametrize("changes, complaint", [
    ({"width": 100_000, "height": 100_000}, "Width must be a multiple of 8 from 64 to 4096"),
    ({"width": 4096, "height": 4096, "batch_size": 2}, "32 megapixels at once; the limit is 16"),
    ({"guidance": math.inf}, "Guidance must be between 0 and 30; got inf"),
    ({"guidance": math.nan}, "Guidance must be between 0 and 30; got nan"),
])
def test_requests_beyond_any_device_are_refused_before_work(changes, complaint):
    with pytest.raises(InputError, match=complaint):
        DEFAULTS.replace(prompt="x", **changes)


def test_a_template_field_wider_than_a_file_name_is_refused():
    with pytest.raises(InputError, match="asks for 2,000,000,000 characters; a file name holds at most 100"):
        check_template("{index:2000000000}")
    check_template("{index:4}-{prompt:40}")
