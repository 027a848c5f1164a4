"""One-image requests made as one batch in one job (a dynamic prompt's images, each with its own choices): each
image is the one its own request makes, saved with that request; the worker runs such a job and sends each."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hypersd_desktop.core.images import InputImages
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.worker.client import QueuedJob
from hypersd_desktop.worker.protocol import ImageReady, JobFailed, JobProgress
from event_log import ended, fake_worker

FAKE = GenerationRequest(prompt="a red kite", base_model="/models/sd15", steps=3, seed=10, width=64, height=64,
                         backend="fake", prompt_template="a {red|blue} kite")


def test_each_image_is_its_own_requests_made_in_one_batch(service, tiny_sd15, hyper_lora):
    lora = hyper_lora("Hyper-SD15-2steps-lora")
    base = GenerationRequest(prompt="", base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),), width=64,
                             height=64, device="cpu", backend="torch", prompt_template="a {red|blue|green} kite")
    requests = [base.replace(prompt=f"a {colour} kite", seed=seed)
                for colour, seed in (("red", 5), ("blue", 6), ("green", 7))]
    progress, shown = [], []
    made = service.run_together(requests, on_progress=progress.append, on_saved=shown.append)
    assert [saved.path for saved in shown] == [saved.path for saved in made]  # each as it was saved
    assert [(p.step, p.total_steps, p.batch_size) for p in progress] == [(1, 2, 3), (2, 2, 3)]  # one batch's steps
    for request, saved in zip(requests, made):
        (alone,) = service.generate(request)
        assert saved.result.request == request and saved.result.seed == request.seed
        assert np.abs(np.asarray(saved.result.image, np.int16) - np.asarray(alone.image, np.int16)).max() <= 1
        assert GenerationRequest.from_dict(read_request(saved.path)) == request  # reuse makes it again
    assert len({saved.result.image.tobytes() for saved in made}) == 3


def test_an_engine_that_makes_no_batches_makes_them_in_turn_counting_the_steps_of_all(service, fake_backend):
    requests = [FAKE, FAKE.replace(prompt="a blue kite", seed=11)]
    progress = []
    made = service.run_together(requests, on_progress=progress.append)
    assert [(p.step, p.total_steps, p.image_index) for p in progress] == [
        (1, 6, 0), (2, 6, 0), (3, 6, 0), (4, 6, 1), (5, 6, 1), (6, 6, 1)]  # one bar for the two
    assert [(saved.result.request.prompt, saved.result.index) for saved in made] == [("a red kite", 0),
                                                                                    ("a blue kite", 1)]


def test_the_worker_runs_them_as_one_job_and_sends_each_image(fake_backend, app_home, tmp_path):
    requests = [FAKE, FAKE.replace(prompt="a blue kite", seed=11), FAKE.replace(seed=12)]
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        job = client.submit_together(requests)
        assert client.running is None or client.running.requests() == tuple(requests)
        ended(events, job)
        with events.changed:
            images = [e for e in events.items if isinstance(e, ImageReady) and e.job_id == job]
            counted = [e.step for e in events.items if isinstance(e, JobProgress) and e.job_id == job]
            failed = [e for e in events.items if isinstance(e, JobFailed)]
    assert not failed and counted == list(range(1, 10))
    assert [image.seed for image in images] == [10, 11, 12] and all(image.path for image in images)
    assert [read_request(io.BytesIO(image.png))["prompt"] for image in images] == [
        "a red kite", "a blue kite", "a red kite"]
    assert all(read_request(io.BytesIO(image.png))["preview"] == "none" for image in images)  # as asked, not run
    assert Image.open(io.BytesIO(images[1].png)).getpixel((0, 0)) == (11, 80, 160)
    queued = QueuedJob(job, requests[0], each=tuple(requests))
    assert queued.describe() == "a red kite (seed 10, 3 images with their own prompts)"
