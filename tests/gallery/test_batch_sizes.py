"""Batch jobs run their units several at a time, as many as is fastest and fits in memory."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hypersd_desktop.core.errors import OutOfMemoryError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine import GenerationRequest, LoraSpec
from hypersd_desktop.gallery.export import ExportOptions
from hypersd_desktop.gallery.gallery import Gallery
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.core.hashes import HashCache
from hypersd_desktop.worker.batch import BatchRunner, BatchSizer, plan_units
from hypersd_desktop.worker.service import GenerationService


def test_the_sizer_doubles_while_images_per_second_grow_by_five_percent():
    sizer = BatchSizer(largest=8)
    per_image = {1: 0.100, 2: 0.060, 4: 0.058, 8: 0.030}  # 4 is under 5% faster than 2: it stops there
    calls = []
    while sizer.chosen("k") is None:
        size = sizer.size("k")
        calls.append(size)
        sizer.record("k", size, per_image[size] * (1.5 if calls.count(size) == 1 else 1))  # a slow first call
    assert calls == [1, 1, 2, 2, 4, 4]
    assert sizer.chosen("k") == 2 and sizer.size("k") == 2
    assert sizer.size("other kind") == 1  # each kind of request is sized on its own

    growing = BatchSizer(largest=4)
    while growing.chosen("k") is None:
        growing.record("k", growing.size("k"), 1 / growing.size("k"))
    assert growing.chosen("k") == 4  # never past the largest


def test_running_out_of_memory_caps_the_size():
    sizer = BatchSizer(largest=8)
    for size in (1, 1, 2, 2):
        sizer.record("k", size, 1 / size)
    assert sizer.size("k") == 4
    sizer.too_large("k", 4)
    assert sizer.chosen("k") == 2
    sizer.too_large("k", 2)
    assert sizer.size("k") == 1


class GpuLikeService(GenerationService):
    """The real service, with a device that holds at most `fits` images at once (as a GPU that runs out of
    memory): the runner's reaction is what is tested."""

    fits = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.compiling: list[set[bool]] = []

    def generate_batch(self, requests, cancel=None):
        self.batches.append(len(requests))
        self.compiling.append({request.compile for request in requests})
        if len(requests) > self.fits:
            raise OutOfMemoryError()
        return super().generate_batch(requests, cancel)


def _job(paths: AppPaths, service_class, sizer, tmp_path, name, units):
    gallery = Gallery(paths)
    service = service_class(paths, gallery, HashCache(paths.data / "hashes.json"))
    report = BatchRunner(service, sizer).run(name, units, tmp_path / name, ExportOptions(template="{index}"))
    images = {path.name: np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
              for path in sorted((tmp_path / name).glob("*.png"))}
    gallery.close()
    return service, report, images


def test_a_job_runs_in_batches_and_makes_the_images_one_by_one_would(tiny_sd15, hyper_lora, tmp_path, app_home):
    paths = AppPaths.default()
    defaults = GenerationRequest(prompt="", base_model=str(tiny_sd15), steps=2, width=64, height=64, seed=20,
                                 loras=(LoraSpec(str(hyper_lora("Hyper-SD15-2steps-lora"))),))
    items = [{"prompt": f"a picture of the number {n}"} for n in range(7)] + [{"prompt": "wide", "width": 96}]
    units = plan_units(items, defaults)
    sizer = BatchSizer(largest=4)
    for size in (1, 1, 2, 2):  # as a GPU would have measured it: 4 at once is fastest
        sizer.record(batch_key_of(units[0]), size, 1 / size)
    service, report, batched = _job(paths, GpuLikeService, sizer, tmp_path, "batched", units)
    assert report.generated == 8 and len(batched) == 8
    # 4 at once ran out of memory and was tried again as 2; the 7th unit has no partner (the 8th is another size)
    assert service.batches == [4, 2, 2, 2, 1, 1]
    assert sizer.chosen(batch_key_of(units[0])) == 2
    # no compile while a size is tried (4, and the 8th unit's own kind), and the images keep the job's request
    assert service.compiling == [{False}, {True}, {True}, {True}, {True}, {False}]
    stored = [read_request(path) for path in sorted((tmp_path / "batched").glob("*.png"))]
    assert [request["prompt"] for request in stored] == [unit.request.prompt for unit in units]
    assert all(request["compile"] for request in stored)

    _, _, alone = _job(paths, GenerationService, BatchSizer(largest=1), tmp_path, "alone", units)
    assert alone.keys() == batched.keys()
    for name in alone:
        assert np.abs(alone[name] - batched[name]).max() <= 1, name
    assert np.abs(alone["1.png"] - alone["2.png"]).max() > 10


def batch_key_of(unit):
    from hypersd_desktop.engine.backend import batch_key

    return batch_key(unit.request)


def test_a_stop_exports_the_images_of_the_batch_in_hand_first(tiny_sd15, hyper_lora, tmp_path, app_home):
    """Stopped while the first of a batch of 2 is exported, the job still exports the second (it is made), and
    makes no more; run again, it makes only the rest."""
    import pytest

    from hypersd_desktop.core.errors import CancelledError
    from hypersd_desktop.core.progress import CancelToken

    paths = AppPaths.default()
    defaults = GenerationRequest(prompt="", base_model=str(tiny_sd15), steps=1, width=64, height=64, seed=3,
                                 loras=(LoraSpec(str(hyper_lora("Hyper-SD15-1step-lora"))),))
    units = plan_units([{"prompt": f"number {n}"} for n in range(5)], defaults)
    sizer = BatchSizer(largest=2)
    for size in (1, 1, 2, 2):
        sizer.record(batch_key_of(units[0]), size, 1 / size)
    gallery = Gallery(paths)
    service = GpuLikeService(paths, gallery, HashCache(paths.data / "hashes.json"))
    token = CancelToken()

    def stop_after_the_first(progress) -> None:
        if progress.done == 1:
            token.cancel()

    runner = BatchRunner(service, sizer)
    with pytest.raises(CancelledError, match="batch stopped after 2 of 5 images"):
        runner.run("job", units, tmp_path / "out", ExportOptions(template="{index}"), stop_after_the_first, token)
    assert service.batches == [2] and sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["1.png", "2.png"]
    report = runner.run("job", units, tmp_path / "out", ExportOptions(template="{index}"))
    assert (report.skipped, report.generated) == (2, 3) and service.batches == [2, 2, 1]
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    gallery.close()


def test_each_job_item_gets_the_installed_embeddings_its_prompts_name(installed, tiny_sd15, tiny_sdxl, tmp_path):
    import torch
    from safetensors.torch import save_file

    from hypersd_desktop.models.library import ModelLibrary

    files = {}
    for name, tensors in (("badhandv4", {"emb_params": torch.zeros(2, 32)}),
                          ("sdxl_glow", {"clip_l": torch.zeros(1, 32), "clip_g": torch.zeros(1, 32)})):
        files[name] = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(files[name]))
    library = ModelLibrary(AppPaths.default())
    try:
        for path in files.values():
            library.import_path(path)
        defaults = GenerationRequest(prompt="", base_model=library.resolve(str(tiny_sd15)), width=64, height=64)
        items = [{"prompt": "a fox"}, {"prompt": "a fox, sdxl_glow"}, {"prompt": "a hand", "negative": "badhandv4"}]
        units = plan_units(items, defaults, resolve=library.resolve, embeddings=library.embeddings_named)
    finally:
        library.close()
    assert [unit.request.embeddings for unit in units] == [(), (), (str(files["badhandv4"]),)]  # SDXL's: not here


def test_an_export_folder_that_cannot_take_an_image_stops_the_job_saying_why(tiny_sd15, tmp_path, app_home):
    """A file stands where the template puts a subfolder (a full disk or a drive unplugged fails the same write):
    the job stops with what happened and what to do, and run again once that is mended it makes no image twice."""
    import pytest

    from hypersd_desktop.core.errors import AppError

    paths = AppPaths.default()
    defaults = GenerationRequest(prompt="", base_model=str(tiny_sd15), steps=1, width=64, height=64, seed=5)
    units = plan_units([{"prompt": "a fox"}, {"prompt": "an owl"}], defaults)
    target = tmp_path / "out"
    target.mkdir()
    (target / "an owl").write_text("a file where the subfolder goes")
    gallery = Gallery(paths)
    service = GenerationService(paths, gallery, HashCache(paths.data / "hashes.json"))
    options = ExportOptions(template="{prompt}/{index}")
    try:
        with pytest.raises(AppError, match=f"The batch stopped: it could not be written into {target}.*What was "
                                           "done is kept; run it again to continue"):
            BatchRunner(service, BatchSizer(largest=1)).run("job", units, target, options)
        assert (target / "a fox" / "1.png").is_file()
        (target / "an owl").unlink()
        report = BatchRunner(service, BatchSizer(largest=1)).run("job", units, target, options)
    finally:
        gallery.close()
    assert (report.generated, report.skipped) == (0, 1)  # the owl, made before the stop, is exported, not made again
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.png")) == ["a fox/1.png", "an owl/2.png"]


def test_a_gallery_folder_that_cannot_take_an_image_stops_the_job_saying_why(tiny_sd15, tmp_path, app_home):
    """The images folder, where a batch's images are made before they are exported, fails the same way (a file
    where the job's folder goes stands in for a full disk): the job stops saying why and that a rerun continues, as
    a NotSavedError, so that the window holds its queued jobs that save too."""
    import pytest

    from hypersd_desktop.core.errors import NotSavedError

    paths = AppPaths.default()
    defaults = GenerationRequest(prompt="", base_model=str(tiny_sd15), steps=1, width=64, height=64, seed=5)
    units = plan_units([{"prompt": "a fox"}, {"prompt": "an owl"}], defaults)
    target = tmp_path / "out"
    blocked = paths.images / "batch-job"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the job's folder goes")
    gallery = Gallery(paths)
    service = GenerationService(paths, gallery, HashCache(paths.data / "hashes.json"))
    try:
        with pytest.raises(NotSavedError) as raised:
            BatchRunner(service, BatchSizer(largest=1)).run("job", units, target, ExportOptions())
        blocked.unlink()
        report = BatchRunner(service, BatchSizer(largest=1)).run("job", units, target, ExportOptions())
    finally:
        gallery.close()
    assert str(raised.value).startswith(f"The batch stopped: it could not be written into {blocked} (")
    assert str(raised.value).endswith("What was done is kept; run it again to continue.")
    assert (report.generated, report.skipped) == (2, 0) and len(list(target.rglob("*.png"))) == 2
