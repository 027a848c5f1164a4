"""The client's queue while the disk cannot take images: the jobs that save wait, the others run."""

from __future__ import annotations

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.types import GenerationRequest
from hypersd_desktop.worker.client import QueueChanged, QueuedJob
from hypersd_desktop.worker.protocol import JobFinished
from event_log import ended, fake_worker

REQUEST = GenerationRequest(prompt="a red kite", base_model="/models/sd15", steps=2, seed=1, width=64, height=64,
                            backend="fake")


def test_a_job_whose_image_cannot_be_saved_holds_the_jobs_that_save_until_a_new_one_is_asked_for(
        fake_backend, app_home, tmp_path):
    images = AppPaths.default().images
    images.parent.mkdir(parents=True, exist_ok=True)
    images.write_text("not a folder")  # the images folder cannot be written, as on a full disk
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        first, second, third = (client.submit(REQUEST.replace(seed=seed)) for seed in (1, 2, 3))
        live = client.submit(REQUEST.replace(seed=4), save=False)  # a live image saves nothing: it runs
        failed = ended(events, first)
        assert failed.not_saved and "not saved" in failed.message
        assert isinstance(ended(events, live), JobFinished)
        assert client.held and [job.job_id for job in client.queued()] == [second, third]
        with events.changed:
            shown = [e for e in events.items if isinstance(e, QueueChanged)][-1]
        assert shown.held and [job.job_id for job in shown.queued] == [second, third]

        images.unlink()  # room again: the next image asked for runs the held ones first
        fourth = client.submit(REQUEST.replace(seed=5))
        assert [type(ended(events, job)) for job in (second, third, fourth)] == [JobFinished] * 3
        assert not client.held
    assert sorted(path.stem.rsplit("-", 1)[-1] for path in images.rglob("*.png")) == ["2", "3", "5"]


def test_an_image_to_enlarge_waits_its_turn_and_a_newer_request_does_not_replace_it(fake_backend, app_home, tmp_path):
    from PIL import Image

    from hypersd_desktop.worker.protocol import Enlargement, ImageReady

    picture = tmp_path / "20261204-101500-9.png"
    Image.new("RGB", (32, 24), "teal").save(picture)
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        first = client.submit(REQUEST)
        enlarge = client.submit_enlargement(Enlargement(str(picture), 2.0))
        last = client.submit(REQUEST.replace(seed=7), latest_wins=True)  # replaces images waiting, not this
        assert [type(ended(events, job)) for job in (first, enlarge, last)] == [JobFinished] * 3
        with events.changed:
            [made] = [e for e in events.items if isinstance(e, ImageReady) and e.job_id == enlarge]
    assert made.seed == 9 and made.image_id is not None
    upscaler = "/models/4x-UltraSharp.safetensors"
    described = QueuedJob(enlarge, None, enlargement=Enlargement(str(picture), 2.0, upscaler))
    assert described.describe() == "20261204-101500-9.png enlarged × 2 (4x-UltraSharp)" and described.saves
    with Image.open(made.path) as image:
        assert image.size == (64, 48)


def test_the_jobs_of_the_last_run_come_back_waiting_for_resume_and_newer_ones_run_first(fake_backend, app_home,
                                                                                      tmp_path):
    import json

    from hypersd_desktop.engine.plot import Axis, PlotAxis, PlotSpec
    from hypersd_desktop.gallery.export import ExportOptions
    from hypersd_desktop.worker.batch import BatchSpec, BatchUnit
    from hypersd_desktop.worker.client import kept_data, kept_jobs
    from hypersd_desktop.worker.protocol import ControlMap, Enlargement

    plot = PlotSpec(REQUEST, PlotAxis(Axis.STEPS, "1-2"))
    last_run = [
        QueuedJob(7, REQUEST.replace(seed=11)),
        QueuedJob(8, REQUEST.replace(seed=12), each=(REQUEST.replace(seed=12), REQUEST.replace(seed=13, prompt="b"))),
        QueuedJob(9, REQUEST, plot=plot),
        QueuedJob(10, None, enlargement=Enlargement("/pictures/a.png", 2.0)),
        QueuedJob(11, REQUEST.replace(seed=14), save=False),  # a live image: not kept
        QueuedJob(12, None, map=ControlMap("ab" * 32, "/models/depth")),  # a control map: not kept
        QueuedJob(13, REQUEST, BatchSpec("b1", (BatchUnit(1, 0, REQUEST),), tmp_path, ExportOptions())),  # resumed
        # from the batch dialog
        None,  # no job running
    ]
    text = json.dumps(kept_data(last_run))  # as the session file holds it
    data = json.loads(text)
    data.insert(1, {**data[0], "request": {**data[0]["request"], "steps": -3}})  # edited by hand: left out
    jobs, damaged = kept_jobs(data)
    assert damaged == 1 and [(job.request, job.each, job.plot, job.enlargement) for job in jobs] == [
        (job.request, job.each, job.plot, job.enlargement) for job in last_run[:4]]
    assert kept_jobs("not a list") == ([], 0)

    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        again = client.queue_again(jobs[:2])
        assert all(job.waiting for job in client.queued()) and [job.job_id for job in client.queued()] == again
        newer = client.submit(REQUEST.replace(seed=5), latest_wins=True)  # replaces none of the last run's
        assert isinstance(ended(events, newer), JobFinished)
        assert [job.job_id for job in client.queued()] == again and client.running is None
        with events.changed:
            shown = [e for e in events.items if isinstance(e, QueueChanged)][-1]
        assert [job.waiting for job in shown.queued] == [True, True]
        assert [job.request.seed for job in client.pending()] == [11, 12]
        client.resume()
        assert [type(ended(events, job)) for job in again] == [JobFinished] * 2
        assert client.pending() == ()


def test_a_worker_changed_in_settings_makes_the_jobs_the_old_one_had_not_done_with_their_ids(
        fake_backend, app_home, tmp_path):
    from event_log import Events

    from hypersd_desktop.worker.client import WorkerClient

    events = Events()
    old = WorkerClient(events, home=str(app_home), inputs=InputImages(tmp_path / "inputs"))
    old.engine_choice = ("fake", "auto")
    jobs = [old.submit(REQUEST.replace(seed=seed)) for seed in (1, 2, 3)]  # queued: no worker is ready yet
    old.cancel(jobs[1])
    client = old.successor(old.command)  # as another Python or a new runtime is chosen
    try:
        assert [job.job_id for job in client.queued()] == [jobs[0], jobs[2]] and old.queued() == ()
        client.start()
        assert [type(ended(events, job)) for job in (jobs[0], jobs[2])] == [JobFinished] * 2
        assert client.submit(REQUEST) > jobs[2]  # new ids go on from the old client's
    finally:
        client.shutdown()


def test_a_paused_queue_starts_no_job_that_saves_until_resumed(fake_backend, app_home, tmp_path):
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        client.pause()
        first = client.submit(REQUEST.replace(seed=1))
        live = client.submit(REQUEST.replace(seed=2), save=False)  # a live image is looked at now: it runs
        assert isinstance(ended(events, live), JobFinished)
        second = client.submit(REQUEST.replace(seed=3))  # asked for while paused: it waits too
        assert client.paused and [job.job_id for job in client.queued()] == [first, second]
        with events.changed:
            shown = [e for e in events.items if isinstance(e, QueueChanged)][-1]
        assert shown.paused and not shown.held
        client.resume()
        assert [type(ended(events, job)) for job in (first, second)] == [JobFinished] * 2
        assert not client.paused
