"""Weights files as they arrive damaged or hostile: every one is a clear `ModelFormatError` (one
`error:` line from the command line) before any tensor is loaded, never a traceback."""

from __future__ import annotations

import json
import os
import struct
import time

import pytest

from cli_process import run_cli
from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.engine.inspect import base_architecture, inspect_file
from hypersd_desktop.models.library import ModelLibrary


def weights(path, header, data: bytes = b"\0" * 8, raw: bytes | None = None):
    text = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("header, raw, data, complaint", [
    ({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, None, b"\0" * 8, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}, None, b"\0" * 8, "malformed header entry"),
    (None, b'{"a": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 8]}}', b"\0" * 8, "malformed header entry"),
    (None, b"[" * 100_000 + b"]" * 100_000, b"", "header is not JSON"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, None, b"\0" * 8, "malformed header entry"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, None, b"\0" * 8, "overlaps the one before it"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, None, b"\0" * 16, "leaves a gap at byte 0"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, None, b"\0" * 20, "cover 8 bytes of a 20-byte"),
    ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, None, b"\0" * 4, "malformed header entry"),
    ({"a": "F32"}, None, b"", "malformed header entry"),
])
def test_malformed_headers_are_clear_errors(tmp_path, header, raw, data, complaint):
    path = weights(tmp_path / "bad.safetensors", header, data, raw)
    with pytest.raises(ModelFormatError, match=complaint):
        inspect_file(path)


def _zipped_diffusers_folder() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("my-model/model_index.json", '{"_class_name": "StableDiffusionPipeline"}')
        archive.writestr("my-model/unet/diffusion_pytorch_model.safetensors", weights_bytes(GOOD))
    return buffer.getvalue()


def weights_bytes(header) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * 8


@pytest.mark.parametrize("name, content, said", [
    ("model.safetensors", b"<!DOCTYPE html>\n<html lang=\"en\"><head><title>Sign in | Civitai</title>",
     "is a web page (HTML), not the model"),
    ("model.safetensors", b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"4d7a2146" * 8 +
     b"\nsize 2132625894\n", "is a Git LFS pointer to the model (2,132,625,894 bytes)"),
    ("model.safetensors", b'{"error":"Repository Not Found for url: https://huggingface.co/api/models/x."}',
     'is text, not model weights (it begins "{"error":"Repository Not Found'),
    ("model.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1, 0), "is a GGUF file"),
    ("model.safetensors", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\0" * 24, "is an archive (7-Zip or RAR)"),
    ("model.zip", _zipped_diffusers_folder(), "is a ZIP archive, not model weights: unpack it"),
    # a model's preview picture saved under the model's name (Civitai's "Download" of the wrong item)
    ("4x-UltraSharp.safetensors", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\0" * 24, "is a picture (PNG, JPEG"),
    ("model.safetensors", b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\0" * 24, "is a picture (PNG, JPEG, WebP or GIF)"),
])
def test_a_file_that_is_something_else_under_a_models_name_says_what_it_is(tmp_path, name, content, said):
    """What a download saves in place of a model (the site's sign-in page, an error answer), a clone without Git
    LFS, and files of other kinds named as models: each says what it is and what to do, not that it declares an
    absurd header length."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFormatError) as raised:
        inspect_file(path)
    assert said in str(raised.value) and "header" not in str(raised.value)


def test_a_truncated_model_is_still_called_truncated(tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(weights_bytes(GOOD)[:40])
    with pytest.raises(ModelFormatError, match="is truncated or not safetensors"):
        inspect_file(path)


def test_a_good_header_still_passes(tmp_path):
    assert inspect_file(weights(tmp_path / "good.safetensors", GOOD)).tensor_count == 1


def test_a_huge_header_is_refused_quickly(tmp_path):
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as stream:
        stream.write(struct.pack("<Q", 99 * 2**20))
        stream.truncate(8 + 99 * 2**20)
    started = time.perf_counter()
    with pytest.raises(ModelFormatError, match="header, far more than any real model"):
        inspect_file(path)
    assert time.perf_counter() - started < 5  # refused from its length alone, not parsed


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="permissions do not bind root")
def test_an_unreadable_file_is_a_clear_error(tmp_path):
    path = weights(tmp_path / "locked.safetensors", GOOD)
    path.chmod(0)
    with pytest.raises(ModelFormatError, match="cannot be read"):
        inspect_file(path)


def test_a_symlink_loop_is_a_clear_error(tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    with pytest.raises(ModelFormatError):
        inspect_file(loop)


@pytest.mark.parametrize("index", ["[1, 2]", "not json", '{"_class_name": ["StableDiffusionPipeline"]}'])
def test_a_damaged_model_index_is_a_clear_error(tmp_path, index):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text(index)
    with pytest.raises(InputError):
        base_architecture(folder)
    library = ModelLibrary(AppPaths.default())
    (item,) = library.import_path(folder)
    library.close()
    assert item.status in ("broken", "unsupported") and item.reason


def test_folders_and_pipes_named_like_weights_are_reported_not_imported_as_nothing(app_home, tmp_path):
    folder = tmp_path / "x.safetensors"
    folder.mkdir()
    fifo = tmp_path / "y.safetensors"
    os.mkfifo(fifo)
    library = ModelLibrary(AppPaths.default())
    (as_folder,), (as_fifo,) = library.import_path(folder), library.import_path(fifo)
    library.close()
    assert (as_folder.status, as_folder.reason) == ("broken", "a folder named like a weights file, not a file")
    assert (as_fifo.status, as_fifo.reason) == ("broken", "not a regular file (a pipe or a device)")


def test_the_same_file_in_two_folders_is_two_models(app_home, tmp_path):
    library = ModelLibrary(AppPaths.default())
    paths = []
    for folder, fill in (("x", b"\1" * 8), ("y", b"\2" * 8), ("z", b"\2" * 8)):
        (tmp_path / folder).mkdir()
        paths.append(weights(tmp_path / folder / "foo.safetensors", {
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight":
                {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, fill))
    ids = [library.import_path(path)[0].model_id for path in paths]
    assert len(set(ids)) == 3 and all(ids)
    assert {model.path for model in library.registry.list()} == {str(p) for p in paths}
    library.close()


def test_the_command_line_says_one_line(tmp_path):
    path = weights(tmp_path / "bad.safetensors", {"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}})
    result = run_cli("inspect", path, timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("error: bad.safetensors stores tensor 'a' in an "
                                                                "unknown dtype")
    assert len(result.stderr.strip().splitlines()) == 1
