"""Input images cross the worker protocol by content hash and bytes: the app holds them (in memory for
the Draw tab's frames), sends each to the worker process before the first job that names it, and an
image saved from them keeps them, so its stored request can be run again."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.vocab import Preprocessor
from hypersd_desktop.engine.types import ControlSpec, GenerationRequest
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.worker.protocol import JobFailed, JobFinished, WorkerReady
from event_log import fake_worker, finished_images

REQUEST = GenerationRequest(prompt="a red kite", base_model="/models/sd15", steps=3, seed=41, width=64, height=72,
                            backend="fake")


def drawing(size: int = 64) -> bytes:
    """Black strokes on white, as people draw."""
    picture = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(picture).line((8, 8, 56, 40), fill="black", width=5)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_held_in_the_app_reach_the_worker_and_are_kept_only_with_a_saved_image(fake_backend, app_home,
                                                                                      tmp_path):
    app_inputs = InputImages(tmp_path / "app-inputs")  # not the worker's folder: the bytes must cross the pipe
    sketch = app_inputs.hold(drawing())
    worker_inputs = InputImages(AppPaths.default().inputs)
    request = REQUEST.replace(width=64, height=64,
                              controls=(ControlSpec("/models/scribble", sketch, preprocessor=Preprocessor.SCRIBBLE),))
    with fake_worker(app_home, app_inputs) as (events, client):
        client.submit(request, save=False)
        client.submit(request.replace(seed=7))
        live, saved = finished_images(events, 2)
    assert not [e for e in events.items if isinstance(e, JobFailed)]
    assert not list((tmp_path / "app-inputs").glob("*"))  # the app wrote nothing

    # The live image came back without a file, and its sketch reached the engine as white strokes on black.
    assert (live.path, live.image_id) == ("", None)
    shown = Image.open(io.BytesIO(live.png)).convert("L")
    assert shown.getpixel((32, 24)) == 255 and shown.getpixel((60, 4)) == 0
    assert read_request(io.BytesIO(live.png))["controls"][0]["image"] == sketch

    # The saved image kept its sketch in the worker's input folder, so its stored request runs again.
    assert saved.path and saved.image_id is not None
    assert worker_inputs.find(sketch) is not None
    assert worker_inputs.read(sketch) == app_inputs.read(sketch)


def test_a_job_naming_an_image_the_app_does_not_have_fails_at_once_and_the_queue_goes_on(fake_backend, app_home,
                                                                                         tmp_path):
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        lost = client.submit(REQUEST.replace(init_image="cd" * 32))
        client.submit(REQUEST)
        events.wait_for(JobFinished)
    failed = events.wait_for(JobFailed)
    assert failed.job_id == lost and "is not here" in failed.message and not failed.cancelled


def test_the_worker_is_sent_an_image_again_after_it_restarts(fake_backend, app_home, tmp_path):
    """A restarted worker holds nothing: the client forgets what it sent to the process before."""
    inputs = InputImages(tmp_path / "inputs")
    init = inputs.hold(drawing())
    request = REQUEST.replace(width=None, height=None, init_image=init)
    with fake_worker(app_home, inputs) as (events, client):
        client.submit(request, save=False)
        finished_images(events, 1)
        client.shutdown()
        with events.changed:
            events.items.clear()
        client.start()
        events.wait_for(WorkerReady)
        client.submit(request, save=False)
        (again,) = finished_images(events, 1)
    assert not [e for e in events.items if isinstance(e, JobFailed)], events.items
    assert Image.open(io.BytesIO(again.png)).convert("L").getpixel((32, 24)) == 0  # the init image, echoed


def test_a_depth_map_is_made_by_the_worker_from_a_picture_the_app_holds(fake_backend, app_home, tmp_path,
                                                                       depth_model):
    """The window has no torch: it asks the worker for a photo's depth map, which comes back as PNG bytes, the
    engine's own map (a photo larger than any run is mapped at 2048 pixels on its long side)."""
    import numpy as np

    from hypersd_desktop.engine.depth import DepthEstimator
    from hypersd_desktop.worker.protocol import ControlMap, JobStarted, MapReady

    inputs = InputImages(tmp_path / "app-inputs")
    rng = np.random.default_rng(2)
    photos = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in ((70, 42), (2400, 1600))]
    held = []
    for photo in photos:
        buffer = io.BytesIO()
        photo.save(buffer, format="PNG")
        held.append(inputs.hold(buffer.getvalue()))
    with fake_worker(app_home, inputs) as (events, client):
        jobs = [client.submit_map(ControlMap(digest, str(depth_model))) for digest in held]
        generated = client.submit(REQUEST.replace(seed=3), save=False)  # maps and images share the one queue
        missing = client.submit_map(ControlMap("ab" * 32, str(depth_model)))
        assert events.wait_for(JobFailed).job_id == missing
        finished_images(events, 3)
    maps = {event.job_id: event for event in events.items if isinstance(event, MapReady)}
    assert sorted(maps) == jobs and generated not in maps
    assert {e.job_id for e in events.items if isinstance(e, JobStarted)} >= {*jobs, generated}
    small, large = (Image.open(io.BytesIO(maps[job].png)) for job in jobs)
    assert maps[jobs[0]].map.image == held[0]
    assert np.array_equal(np.asarray(small), np.asarray(DepthEstimator().depth_map(photos[0], str(depth_model), "cpu")))
    assert large.size == (2048, 1365)


def test_a_picture_the_disk_cannot_store_is_a_clear_error(tmp_path):
    """A full disk or a folder that cannot be written (here a file where the folder goes): an `InputError` the
    window shows in its banner, never an unexpected error."""
    import pytest

    from hypersd_desktop.core.errors import InputError

    blocked = tmp_path / "inputs"
    blocked.write_text("not a folder")
    with pytest.raises(InputError, match=f"The picture could not be stored: it could not be written into {blocked}"):
        InputImages(blocked).add(drawing())


def test_a_pictures_tags_are_read_by_the_worker_from_a_picture_the_app_holds(fake_backend, app_home, tmp_path,
                                                                            tagger):
    """The window has no ONNX Runtime: it asks the worker for a picture's tags, queued with the images; they come
    back as the tagger's own description, and a tagger that is no tagger fails that job alone."""
    from hypersd_desktop.engine.tagger import Tagger
    from hypersd_desktop.worker.protocol import Described, Describing

    inputs = InputImages(tmp_path / "app-inputs")
    picture = Image.new("RGBA", (90, 30), (255, 0, 0, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    digest = inputs.hold(buffer.getvalue())
    with fake_worker(app_home, inputs) as (events, client):
        asked = client.submit_description(Describing(digest, str(tagger), threshold=0.3))
        generated = client.submit(REQUEST.replace(seed=3), save=False)
        broken = client.submit_description(Describing(digest, str(tmp_path)))
        assert events.wait_for(JobFailed).job_id == broken
        finished_images(events, 2)
    [described] = [event for event in events.items if isinstance(event, Described)]
    assert described.job_id == asked and described.describing.image == digest and generated != asked
    assert described.description == Tagger(tagger).describe(picture.convert("RGB"), threshold=0.3)
    # padded with white to 90 × 90, two thirds of it white
    assert "red_background" not in [tag.name for tag in described.description.tags]
    failure = next(event for event in events.items if isinstance(event, JobFailed))
    assert "lacks model.onnx" in failure.message


def test_a_picture_a_pass_makes_is_held_as_it_is_and_read_as_a_png_only_when_asked(tmp_path):
    """A pass's picture (a tile's canvas, a first pass) goes to the next run undecoded: opened it is the same pixels
    (and a copy, which the run may change), read or kept it is a PNG of them; the newest few are held."""
    import numpy as np

    from hypersd_desktop.core.images import HELD_PICTURES

    inputs = InputImages(tmp_path / "inputs")
    picture = Image.fromarray(np.random.default_rng(3).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    digest = inputs.hold_picture(picture)
    assert inputs.has(digest) and digest == inputs.hold_picture(picture.copy())  # named by its pixels
    opened = inputs.open(digest)
    assert np.array_equal(np.asarray(opened), np.asarray(picture))
    opened.paste((0, 0, 0), (0, 0, 5, 5))
    assert np.array_equal(np.asarray(inputs.open(digest)), np.asarray(picture))
    with Image.open(io.BytesIO(inputs.read(digest))) as png:
        assert png.format == "PNG" and np.array_equal(np.asarray(png), np.asarray(picture))
    assert inputs.open(digest, mode="L").mode == "L"
    with Image.open(inputs.keep(digest)) as kept:
        assert np.array_equal(np.asarray(kept), np.asarray(picture))
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(inputs.open(inputs.hold_picture(clear))).min() == 255  # transparent is white, as a file's is
    fresh = InputImages(tmp_path / "fresh")
    first = fresh.hold_picture(picture)
    for shade in range(HELD_PICTURES):
        fresh.hold_picture(Image.new("L", (4, 4), shade))
    assert not fresh.has(first)  # the oldest is forgotten
