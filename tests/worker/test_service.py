"""Generate → save → index: the gallery row of a generated image is its request, field by field."""

from __future__ import annotations

import errno
import json
import os

import pytest

from hypersd_desktop.engine.types import GenerationRequest, LoraSpec
from hypersd_desktop.gallery import gallery as gallery_module
from hypersd_desktop.gallery.metadata import read_request
from tool_layouts import a1111_lora_hash


def test_the_gallery_row_equals_the_request_without_reading_the_file_back(service, tiny_sd15, hyper_lora, monkeypatch):
    unified, style = hyper_lora("Hyper-SD15-1step-lora"), hyper_lora("Hyper-SD15-2steps-lora")
    request = GenerationRequest(
        prompt="a lighthouse, ünïcode", negative_prompt="", base_model=str(tiny_sd15),
        loras=(LoraSpec(str(unified), 1.0), LoraSpec(str(style), 0.37)), steps=2, guidance=0.0, eta=0.65,
        scheduler="tcd", seed=2**40 + 3, width=64, height=72, batch_size=2, device="cpu",
    )

    def no_reading(*args, **kwargs):
        raise AssertionError("a generated image was read back to index it")

    monkeypatch.setattr(gallery_module, "read_metadata", no_reading)
    saved = service.run(request)
    assert [s.result.seed for s in saved] == [2**40 + 3, 2**40 + 4]
    for image in saved:
        record = service.gallery.store.get(image.image_id)
        settings = image.result.settings
        assert record.path == str(image.path.resolve()) and record.source == "generated"
        assert (record.prompt, record.negative_prompt, record.seed) == (request.prompt, "", image.result.seed)
        assert (record.steps, record.guidance, record.width, record.height) == (2, 0.0, 64, 72)
        assert record.scheduler == "tcd" and settings.scheduler == "tcd"  # exact, not the A1111 name "TCD"
        assert record.recipe == "Hyper-SD15-1step-lora"
        # A1111's LoRA hashes, so that A1111, Forge and Civitai find the LoRAs by them
        assert record.loras == (("Hyper-SD15-1step-lora", 1.0, a1111_lora_hash(unified)),
                                ("Hyper-SD15-2steps-lora", 0.37, a1111_lora_hash(style)))
        assert record.device == "cpu" and record.time_taken == image.result.timings["per_image_s"]
        assert record.model_name == "sd15" and record.metadata_format == "hypersd"
        assert record.file_size == len(image.png) == image.path.stat().st_size
        stored = request.replace(seed=image.result.seed, batch_size=1)
        assert GenerationRequest.from_dict(json.loads(record.request)) == stored
        assert GenerationRequest.from_dict(read_request(image.path)) == stored  # the PNG holds the same request


def test_images_the_disk_cannot_take_are_handed_back_whole_with_what_to_do(service, tiny_sd15, tmp_path):
    """Every image of the job is tried and each one not written is given to `on_unsaved` as its file; the error
    then names the folder, the reason and how many were lost, and nothing is left in the gallery."""
    import io

    from PIL import Image

    from hypersd_desktop.core.errors import NotSavedError

    blocked = tmp_path / "images"
    blocked.write_text("a file where the folder should be")
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), steps=1, seed=7, width=64,
                                height=64, batch_size=2, device="cpu")
    unsaved = []
    with pytest.raises(NotSavedError) as raised:
        service.run(request, out_dir=blocked / "today", on_unsaved=lambda result, png: unsaved.append((result, png)))
    assert str(raised.value).startswith(f"2 of the 2 images (seeds 7, 8) were not saved: it could not be written "
                                        f"into {blocked / 'today'}")
    assert [result.seed for result, _ in unsaved] == [7, 8] and raised.value.png == unsaved[0][1]
    for result, png in unsaved:
        assert read_request(io.BytesIO(png))["seed"] == result.seed  # the whole file, its settings with it
        assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert service.gallery.store.count() == 0


@pytest.mark.parametrize("number,said", [
    (errno.ENOSPC, "the disk holding /images is full (No space left on device). Free some space"),
    (errno.EROFS, "/images cannot be written to (Read-only file system). Choose another folder"),
    (errno.EACCES, "/images cannot be written to (Permission denied). Choose another folder"),
])
def test_why_an_image_was_not_written_says_what_to_do(number, said):
    from pathlib import Path

    from hypersd_desktop.core.files import why_not_written

    assert why_not_written(OSError(number, os.strerror(number)), Path("/images")).startswith(said)


def test_an_image_the_gallery_cannot_record_is_kept_and_said(service, tiny_sd15):
    """The gallery's database refuses writes (a full disk, a read-only copy): the image is saved all the same and
    the job's warnings say how to add it to the gallery later."""
    service.gallery.store._database.connection.execute("PRAGMA query_only = 1")  # every write now fails
    request = GenerationRequest(prompt="a lighthouse", base_model=str(tiny_sd15), steps=1, seed=3, width=64,
                                height=64, device="cpu")
    (saved,) = service.run(request)
    assert saved.path.is_file() and saved.image_id is None
    assert any(warning.startswith(f"{saved.path.name} was saved, but the gallery could not record it")
               and "Import images from a folder" in warning for warning in saved.result.warnings)
