"""The hashes other tools' images name weights files by: A1111's LoRA hash (kohya's, "AutoV3"), its
old 8-digit model hash ("AutoV1") and the sha256 prefixes. Each is computed here from its definition
(tool_layouts.a1111_lora_hash, hashlib), not with the app's code, and compared with what the library
records at import, at download, and for models registered before it recorded them."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest
import torch
from safetensors.torch import save_file

from hypersd_desktop.core.hashes import lora_hash
from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.models.library import ModelLibrary
from hypersd_desktop.models.registry import MIGRATIONS, Registry
from tool_layouts import a1111_lora_hash


@pytest.fixture
def library(app_home):
    library = ModelLibrary(AppPaths.default())
    yield library
    library.close()


def big_lora(path, seed=0, metadata=None):
    """A LoRA-shaped safetensors file over 1 MiB, so that the old model hash reads real bytes."""
    generator = torch.Generator().manual_seed(seed)
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.randn(4, 80_000, generator=generator),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.randn(32, 4, generator=generator),
               "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)}, str(path), metadata=metadata)
    return path


def test_an_imported_lora_is_named_by_the_hashes_a1111_writes(library, hyper_lora, tmp_path):
    path = hyper_lora("Hyper-SD15-2steps-lora")
    (item,) = library.import_path(path)
    model = library.registry.get(item.model_id)
    data = path.read_bytes()
    assert model.lora_hash[:12] == a1111_lora_hash(path)
    assert model.lora_hash != model.sha256 == hashlib.sha256(data).hexdigest()  # the header is left out
    for written in (a1111_lora_hash(path), a1111_lora_hash(path).upper(), model.sha256[:10], model.sha256[:12]):
        assert model.has_hash(written), written
    for other in ("", "abc", "zz" * 6, a1111_lora_hash(big_lora(tmp_path / "other.safetensors")),
                  model.sha256[1:11]):
        assert not model.has_hash(other), other


def test_the_old_model_hash_reads_the_64_kib_at_1_mib(library, tmp_path, hyper_lora):
    path = big_lora(tmp_path / "wide.safetensors")
    assert path.stat().st_size > 0x110000
    (item,) = library.import_path(path)
    model = library.registry.get(item.model_id)
    assert model.legacy_hash == hashlib.sha256(path.read_bytes()[0x100000:0x110000]).hexdigest()[:8]
    assert model.has_hash(model.legacy_hash) and not model.has_hash(model.legacy_hash[:7] + "0")
    # a file of 1 MiB or less has none: its old hash would hash no bytes, the same for every such file
    (small,) = library.import_path(hyper_lora("Hyper-SD15-2steps-lora"))
    assert library.registry.get(small.model_id).legacy_hash == ""


def test_a_lora_that_carries_kohyas_hash_is_named_by_it_as_a1111_names_it(tmp_path):
    written = "ab" * 32
    path = big_lora(tmp_path / "trained.safetensors", metadata={"sshs_model_hash": written, "ss_network_dim": "4"})
    assert lora_hash(path) == written
    plain = big_lora(tmp_path / "plain.safetensors", metadata={"ss_network_dim": "4"})
    assert lora_hash(plain)[:12] == a1111_lora_hash(plain)


def test_a_file_without_a_safetensors_header_is_hashed_whole(tmp_path):
    path = tmp_path / "odd.safetensors"
    path.write_bytes(b"\xff" * 8 + b"not a header")
    assert lora_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_models_registered_before_the_hashes_were_kept_get_them_once(app_home, tmp_path, hyper_lora):
    """A registry written by the previous version (schema 1) opens, keeps its rows, and `complete_hashes` reads
    the missing hashes of its single-file models."""
    lora = shutil.copy(hyper_lora("Hyper-SD15-2steps-lora"), tmp_path / "kept.safetensors")
    checkpoint = big_lora(tmp_path / "old-checkpoint.safetensors", seed=3)
    paths = AppPaths.default().ensure()
    database = sqlite3.connect(paths.data / "models.sqlite3")
    database.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    for model_id, kind, path in (("kept", "lora", lora), ("old-checkpoint", "base", checkpoint)):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        database.execute(
            "INSERT INTO models (id, name, kind, architecture, layout, path, size, sha256, short_hash, source, owned, "
            "added) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (model_id, model_id, kind, "sd15", "file", str(path), path.stat().st_size, sha, sha[:10],
             "import-reference", 0, 1.0))
    database.commit()
    database.close()

    library = ModelLibrary(paths)
    try:
        before = {model.id: model for model in library.registry.list()}
        assert set(before) == {"kept", "old-checkpoint"}
        assert before["kept"].lora_hash is None and before["kept"].legacy_hash is None
        assert {model.id for model in library.lacking_hashes()} == {"kept", "old-checkpoint"}
        after = {model.id: model for model in library.complete_hashes()}
        assert after["kept"].lora_hash[:12] == a1111_lora_hash(lora) and after["kept"].legacy_hash == ""
        assert after["old-checkpoint"].lora_hash == ""  # a checkpoint has no LoRA hash
        assert after["old-checkpoint"].legacy_hash == hashlib.sha256(
            checkpoint.read_bytes()[0x100000:0x110000]).hexdigest()[:8]
        assert library.lacking_hashes() == []
        # the worker's hash cache takes the LoRA hash from the registry: no file is read again
        assert library.hash_cache().lora_short_hash(lora) == a1111_lora_hash(lora)
    finally:
        library.close()
    assert Registry(paths.data / "models.sqlite3")._db.execute("PRAGMA user_version")[0][0] == len(MIGRATIONS)
