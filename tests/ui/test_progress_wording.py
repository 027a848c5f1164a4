"""The progress lines under long work read as a person would say them."""

from __future__ import annotations

from hypersd_desktop.core.progress import TransferProgress
from hypersd_desktop.ui.tasks import describe_bytes, describe_items, format_duration


def progress(done: int, total: int, rate: float | None, eta: float | None) -> TransferProgress:
    return TransferProgress("import", "", done, total, rate, eta)


def test_items_are_counted_with_a_rate_that_fits_its_size():
    assert describe_items(progress(1969, 3000, 2403.9, 0.43)) == "1,969 of 3,000 images · 2,404 a second · 0 s left"
    assert describe_items(progress(12, 30, 0.7, 25.2)) == "12 of 30 images · 1.4 s each · 25 s left"
    assert describe_items(progress(5, 9, 3.3, 1.2)) == "5 of 9 images · 3.3 a second · 1 s left"
    assert describe_items(progress(0, 4, None, None), "prompts") == "0 of 4 prompts · estimating… left"
    assert describe_items(progress(4, 4, 2.0, 0.0)) == "4 of 4 images · 2.0 a second"


def test_durations_and_bytes():
    assert [format_duration(s) for s in (0.4, 59, 61, 3599, 3600 * 2 + 60 * 5)] == [
        "0 s", "59 s", "1 min 01 s", "59 min 59 s", "2 h 05 min"]
    line = describe_bytes(TransferProgress("download", "", 1_200_000_000, 2_400_000_000, 35_000_000, 34.0))
    assert line.startswith("1.2 GB of 2.4 GB") and line.endswith("/s · 34 s left")
