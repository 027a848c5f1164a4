"""X/Y plots in the service and the worker: each image is the one its own request makes, saved and indexed, then
the grid of them with A1111's plot fields; a cancel keeps the images made."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import CancelledError
from hypersd_desktop.core.images import InputImages
from hypersd_desktop.core.progress import CancelToken
from hypersd_desktop.engine.plot import PLOT_STAGE, Axis, PlotAxis, PlotSpec
from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.gallery import read_metadata
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.worker.client import QueuedJob
from hypersd_desktop.worker.protocol import ImageReady, JobFailed, JobProgress
from event_log import ended, fake_worker

FAKE = GenerationRequest(prompt="a kite over the sea", base_model="/models/sd15", steps=2, seed=10, width=64,
                         height=64, backend="fake")


def cell_of(grid: Image.Image, columns: int, rows: int, column: int, row: int, size: int = 64) -> np.ndarray:
    left, top = grid.width - columns * size, grid.height - rows * size
    x, y = left + column * size, top + row * size
    return np.asarray(grid.crop((x, y, x + size, y + size)))


def test_each_image_is_its_own_requests_and_the_grid_holds_them_with_the_plots_fields(service, tiny_sd15,
                                                                                       hyper_lora):
    lora = hyper_lora("Hyper-SD15-1step-lora")
    base = GenerationRequest(prompt="a lighthouse on a cliff", base_model=str(tiny_sd15), loras=(LoraSpec(str(lora)),),
                             seed=5, width=64, height=64, device="cpu", backend="torch", batch_size=2)
    spec = PlotSpec(base, PlotAxis(Axis.STEPS, "1-2"), PlotAxis(Axis.PROMPT, "lighthouse, windmill"))
    progress, shown = [], []
    made = service.plot(spec, on_progress=progress.append, on_saved=shown.append)
    *cells, grid = made
    assert sorted(saved.path for saved in shown) == sorted(saved.path for saved in made)  # each as it was saved
    # the two prompts of each step count run together as one batch: two batches, then the grid; counted in
    # hundredths of an image, by the steps of each batch (1 step, then 2)
    assert all(p.total_steps == 400 and p.stage == PLOT_STAGE for p in progress)
    assert [p.step for p in progress] == [0, 200, 200, 300, 400, 400]
    assert [saved.result.request.steps for saved in shown[:4]] == [1, 1, 2, 2]
    for cell, saved in zip(spec.cells(), cells):
        (alone,) = service.generate(cell.request)
        assert saved.result.request == cell.request and saved.result.settings.steps == cell.request.steps
        image = np.asarray(saved.result.image, np.int16)
        assert np.abs(image - np.asarray(alone.image, np.int16)).max() <= 1  # as a batch job's images are
        with Image.open(grid.path) as picture:
            assert np.array_equal(cell_of(picture.convert("RGB"), 2, 2, cell.column, cell.row), image)
        assert GenerationRequest.from_dict(read_request(saved.path)) == cell.request  # reuse makes it again
    assert not np.array_equal(np.asarray(cells[0].result.image), np.asarray(cells[2].result.image))

    with Image.open(grid.path) as picture:
        parameters = picture.text["parameters"]
        assert picture.width > 128 and picture.height > 128
    assert parameters.startswith("a lighthouse on a cliff <lora:") and "\nSteps: 1," in parameters  # its first's
    assert ('Script: X/Y/Z plot, X Type: Steps, X Values: 1-2, Y Type: Prompt S/R, Y Values: "lighthouse, windmill"'
            in parameters)
    indexed = dict(service.gallery.store.all_paths())
    assert all(indexed[saved.image_id] == str(saved.path) for saved in made)
    kept = read_request(grid.path)  # the first image's request, with the plot kept beside it for the gallery
    assert GenerationRequest.from_dict(kept) == spec.cells()[0].request
    assert kept["plot"] == dict(spec.text_fields())
    metadata, width, _, warnings = read_metadata(grid.path)
    assert metadata.prompt == "a lighthouse on a cliff" and width == picture.width and not warnings


def test_a_cancelled_plot_keeps_the_images_made_and_makes_no_grid(service, fake_backend):
    spec = PlotSpec(FAKE, PlotAxis(Axis.STEPS, "1-4"))  # four batches of one: a cancel comes between two
    token = CancelToken()
    saved = []

    def on_saved(image) -> None:
        saved.append(image)
        if len(saved) == 2:
            token.cancel()

    with pytest.raises(CancelledError, match="2 of the plot's 4 images were made and saved; its grid is made once"):
        service.plot(spec, cancel=token, on_saved=on_saved)
    assert [image.result.request.steps for image in saved] == [1, 2]
    assert service.gallery.store.count() == 2


def test_a_plot_runs_as_one_queued_job_in_the_worker(fake_backend, app_home, tmp_path):
    spec = PlotSpec(FAKE, PlotAxis(Axis.SEED, "20, 40"), PlotAxis(Axis.STEPS, "1, 3")).fixed()
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        plot = client.submit_plot(spec)
        after = client.submit(FAKE.replace(seed=99), latest_wins=True)  # a plot is no image a newer one replaces
        for job in (plot, after):
            ended(events, job)
        with events.changed:
            images = [e for e in events.items if isinstance(e, ImageReady) and e.job_id == plot]
            counted = [e.step for e in events.items if isinstance(e, JobProgress) and e.job_id == plot]
            failed = [e for e in events.items if isinstance(e, JobFailed)]
    assert not failed and counted[0] == 0 and counted[-1] == 400 and counted == sorted(counted)
    assert [image.seed for image in images] == [20, 40, 20, 40, 20] and all(image.image_id for image in images)
    grid = Image.open(io.BytesIO(images[-1].png))
    assert 'Script: X/Y/Z plot, X Type: Seed, X Values: "20, 40", Y Type: Steps, Y Values: "1, 3"' in grid.text["parameters"]
    for image, (column, row) in zip(images[:4], [(0, 0), (1, 0), (0, 1), (1, 1)]):
        own = np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB"))
        assert np.array_equal(cell_of(grid.convert("RGB"), 2, 2, column, row), own)
    assert QueuedJob(plot, spec.base, plot=spec).describe() == "X/Y/Z plot of 4 images: Seed × Steps"
    files = {"a": "/m/a.safetensors", "b": "/m/b.safetensors"}
    models = PlotSpec(FAKE, PlotAxis(Axis.MODEL, "a, b").looked_up(files.__getitem__))
    in_use = {path for request in QueuedJob(1, models.base, plot=models).requests() for path in request.model_paths()}
    assert {"/m/a.safetensors", "/m/b.safetensors"} <= in_use  # the model manager leaves them while it waits


def test_a_plot_with_a_z_axis_crosses_to_the_worker_and_lays_a_grid_out_for_each_value(fake_backend, app_home,
                                                                                        tmp_path):
    spec = PlotSpec(FAKE, PlotAxis(Axis.SEED, "20, 40"), z=PlotAxis(Axis.STEPS, "1, 3")).fixed()
    with fake_worker(app_home, InputImages(tmp_path / "inputs")) as (events, client):
        ended(events, client.submit_plot(spec))
        with events.changed:
            images = [e for e in events.items if isinstance(e, ImageReady)]
            failed = [e for e in events.items if isinstance(e, JobFailed)]
    assert not failed and len(images) == 5
    made = [Image.open(io.BytesIO(image.png)).convert("RGB") for image in images[:4]]
    assert [read_request(io.BytesIO(image.png))["steps"] for image in images[:4]] == [1, 1, 3, 3]
    grid = Image.open(io.BytesIO(images[-1].png))
    assert 'X Type: Seed, X Values: "20, 40", Z Type: Steps, Z Values: "1, 3"' in grid.text["parameters"]
    assert np.array_equal(np.asarray(grid.convert("RGB")), np.asarray(spec.grid(made)))  # Z's grids side by side


def test_images_that_differ_in_seed_or_prompt_run_together_up_to_a_batch_of_eight():
    from hypersd_desktop.worker.service import PLOT_BATCH, _together

    assert PLOT_BATCH == 8
    seeds = PlotSpec(FAKE, PlotAxis(Axis.SEED, "1-10")).cells()
    assert _together(seeds) == [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9]]
    grid = PlotSpec(FAKE, PlotAxis(Axis.STEPS, "1, 2, 4"), PlotAxis(Axis.PROMPT, "kite, gull")).cells()
    assert _together(grid) == [[0, 3], [1, 4], [2, 5]]  # by step count, the first image's order
    negative = PlotSpec(FAKE.replace(negative_prompt="a kite's string"), PlotAxis(Axis.PROMPT, "kite, gull")).cells()
    assert _together(negative) == [[0], [1]]  # the negative prompts differ too: each runs alone
    picture = PlotSpec(FAKE.replace(init_image="a" * 64), PlotAxis(Axis.SEED, "1-3")).cells()
    assert _together(picture) == [[0], [1], [2]]  # from a picture: one at a time
