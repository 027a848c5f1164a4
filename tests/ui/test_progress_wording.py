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


def test_a_long_run_says_its_time_left_at_the_pace_of_its_steps_not_of_the_loading(qtbot, idle_app):
    from hypersd_desktop.engine.plot import PLOT_STAGE
    from hypersd_desktop.engine.types import HIRES_STAGE
    from hypersd_desktop.worker.protocol import JobProgress, JobStarted

    window, bridge = idle_app.window, idle_app.bridge
    bridge.started.emit(JobStarted(job_id=7))

    def step(number: int, total: int, elapsed_s: float, stage: str = "") -> str:
        bridge.progress.emit(JobProgress(job_id=7, step=number, total_steps=total, elapsed_s=elapsed_s, stage=stage))
        return window.timing.text()

    assert step(1, 30, 10.0) == "Step 1/30 · 10.00 s", "one step: no pace yet (10 s of it was the loading)"
    assert step(2, 30, 11.0) == "Step 2/30 · 11.00 s · about 28 s left"
    assert step(3, 30, 12.5) == "Step 3/30 · 12.50 s · about 34 s left"  # 1.25 s a step since the first
    assert step(1, 20, 13.0, HIRES_STAGE) == f"{HIRES_STAGE} · step 1/20 · 13.00 s", "a second pass: a new pace"
    assert step(2, 20, 16.0, HIRES_STAGE).endswith("· about 54 s left")
    # an X/Y plot counts its images in hundredths: its percent, and the time the rest of its images take
    assert step(0, 1200, 17.0, PLOT_STAGE) == "X/Y/Z plot · 0% · 17\u00a0s"
    assert step(300, 1200, 47.0, PLOT_STAGE) == "X/Y/Z plot · 25% · 47\u00a0s · about 1 min 30 s left"

    bridge.started.emit(JobStarted(job_id=8))  # a GPU's run: a half second needs no estimate
    bridge.progress.emit(JobProgress(job_id=8, step=1, total_steps=4, elapsed_s=0.30))
    bridge.progress.emit(JobProgress(job_id=8, step=2, total_steps=4, elapsed_s=0.35))
    assert window.timing.text() == "Step 2/4 · 0.35 s"


def test_a_tiles_faces_and_hands_steps_are_counted_as_steps(qtbot, idle_app):
    """A pass over part of the image (a tile of a repaint in tiles, a face, a hand) says which and counts its steps,
    as a Hires fix's second pass does, not a percentage of work."""
    from hypersd_desktop.worker.protocol import JobProgress, JobStarted

    window, bridge = idle_app.window, idle_app.bridge
    bridge.started.emit(JobStarted(job_id=9))
    for stage in ("Repainting in tiles (3 of 16)", "Detailing faces (1 of 2)", "Detailing hands (2 of 2)"):
        bridge.progress.emit(JobProgress(job_id=9, step=1, total_steps=2, elapsed_s=4.0, stage=stage))
        assert window.timing.text() == f"{stage} · step 1/2 · 4.00 s"


def test_a_worker_slow_to_start_is_said_to_be_starting_with_its_time(qtbot, idle_app):
    from hypersd_desktop.worker.client import WorkerStarting

    window = idle_app.window
    assert window.device_label.text() == "Starting the generation worker…"
    idle_app.bridge.still_starting.emit(WorkerStarting(75.2))
    assert window.device_label.text() == "Starting the generation worker… 1 min 15 s (a first start can take minutes)"
