"""Trigger words and suggested weights: read from a file's header and the notes other tools keep beside it, kept in
the registry, and added to or taken out of a prompt."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
from safetensors.torch import load_file, save_file

from hypersd_desktop.core.prompt_tags import prompt_items, trigger_words, with_words, without_words
from hypersd_desktop.core.vocab import ImportStatus
from hypersd_desktop.models.model_notes import MAX_NOTE_BYTES
from hypersd_desktop.models.registry import Registry


def test_a_prompts_items_are_cut_at_commas_outside_brackets():
    assert prompt_items(" a cat ,(red hair, blue eyes:1.2),, [from:to:0.5], <lora:x, y:0.8>,\n in  snow") == [
        "a cat", "(red hair, blue eyes:1.2)", "[from:to:0.5]", "<lora:x, y:0.8>", "in snow"]
    assert prompt_items("") == [] and prompt_items(" , ") == []


def test_trigger_words_take_texts_and_lists_of_them_and_nothing_else():
    assert trigger_words("sks dog, wearing a hat", ["Sks Dog", "(red:1.2), 8-bit"], None, 3, {"a": "b"}, [[1]]) == (
        "sks dog", "wearing a hat", "(red:1.2)", "8-bit")
    flood = trigger_words(", ".join(f"w{n}" for n in range(1000)), "x" * 5000)
    assert len(flood) == 32 and "x" * 5000 not in flood


def test_words_are_added_once_and_taken_out_leaving_the_persons_own_words():
    prompt = "a castle on a hill,  Pixel Art"
    added = with_words(prompt, ("pixel art", "8-bit", "isometric"))
    assert added == "a castle on a hill,  Pixel Art, 8-bit, isometric"
    assert with_words(added, ("8-bit",)) == added
    assert with_words("", ("8-bit", "pixel art")) == "8-bit, pixel art"
    assert with_words("a castle,\n", ("8-bit",)) == "a castle, 8-bit"
    assert without_words(added, ("8-bit", "isometric")) == prompt
    # only whole items go: "8-bit style" and a bracketed weight are the person's
    assert without_words("8-bit, a castle, 8-bit style, (8-bit:1.3)", ("8-bit",)) == "a castle, 8-bit style, (8-bit:1.3)"
    assert without_words("a castle", ("8-bit",)) == "a castle"
    # a bracket the person left open guards nothing, and a word's own stray bracket is dropped
    assert with_words("a (castle", trigger_words("style of (ink", "8-bit)")) == "a (castle, style of ink, 8-bit"
    assert without_words("a (castle, style of ink, 8-bit", ("style of ink", "8-bit")) == "a (castle"


@pytest.fixture
def style_lora(tmp_path, tiny_sd15):
    """A Kohya LoRA (not a Hyper-SD one) whose header names its trigger phrase, as sd-scripts writes it."""
    from diffusers import UNet2DConditionModel

    import tiny_models

    made = tiny_models.kohya_lora(UNet2DConditionModel.from_pretrained(tiny_sd15, subfolder="unet"),
                                  tmp_path / "made.safetensors", seed=9)
    path = tmp_path / "Lora" / "pixel-art.safetensors"
    path.parent.mkdir()
    save_file(load_file(made), str(path), metadata={"ss_network_module": "networks.lora",
                                                    "modelspec.trigger_phrase": "pixelart, retro game"})
    return path


def test_an_import_reads_the_header_and_the_notes_beside_the_file(library, style_lora):
    """A1111's notes and ComfyUI LoRA Manager's (a person edits those) first, then Civitai Helper's copy of
    Civitai's answer, then Stability Matrix's record, then the header; A1111's preferred weight."""
    beside = style_lora.with_name
    beside("pixel-art.json").write_text(json.dumps({
        "description": "", "sd version": "SD1", "activation text": "pixel art, 8-bit", "preferred weight": 0.65,
        "negative text": "", "notes": ""}), encoding="utf-8")
    beside("pixel-art.civitai.info").write_text("\ufeff" + json.dumps({  # Civitai Helper writes a BOM at times
        "id": 250000, "modelId": 120000, "name": "v2", "trainedWords": ["pixel art", "isometric"],
        "baseModel": "SD 1.5", "model": {"name": "Pixel Art", "type": "LORA"}}), encoding="utf-8")
    beside("pixel-art.metadata.json").write_text(json.dumps({  # ComfyUI LoRA Manager's, with Civitai's answer
        "file_name": "pixel-art", "model_name": "Pixel Art", "base_model": "SD 1.5", "usage_tips": "{}",
        "civitai": {"id": 250000, "trainedWords": ["pixel art", "dithering"]}}), encoding="utf-8")
    beside("pixel-art.cm-info.json").write_text(json.dumps({
        "ModelId": 120000, "ModelName": "Pixel Art", "VersionName": "v2", "TrainedWords": ["sprite sheet"],
        "BaseModel": "SD 1.5"}), encoding="utf-8")
    (item,) = library.import_path(style_lora)
    model = library.registry.get(item.model_id)
    assert (item.status, model.kind) == (ImportStatus.IMPORTED, "lora")
    assert model.trigger_words == ("pixel art", "8-bit", "dithering", "isometric", "sprite sheet", "pixelart",
                                   "retro game")
    assert model.preferred_weight == 0.65


@pytest.mark.parametrize("note", [
    b"{not json", b"[\"a list\"]", b"\xff\xfe not text", b'{"activation text": 7, "preferred weight": "0.8"}',
    b'{"activation text": "x", "preferred weight": 1e309}', b"[" * 100_000 + b"]" * 100_000, None])
def test_a_damaged_or_strange_note_is_passed_over(library, style_lora, note):
    path = style_lora.with_name("pixel-art.json")
    if note is None:  # one too large to be a note
        path.write_bytes(b'{"activation text": "huge", "notes": "' + b"x" * MAX_NOTE_BYTES + b'"}')
    else:
        path.write_bytes(note)
    (item,) = library.import_path(style_lora)
    model = library.registry.get(item.model_id)
    assert item.status == ImportStatus.IMPORTED
    assert model.trigger_words in (("pixelart", "retro game"), ("x", "pixelart", "retro game"))
    assert model.preferred_weight is None


def test_an_embeddings_words_come_from_its_note_and_a_checkpoints_are_not_kept(library, tmp_path, tiny_sd15):
    import ldm_format
    from diffusers import StableDiffusionPipeline

    embedding = tmp_path / "embeddings" / "easynegative.safetensors"
    embedding.parent.mkdir()
    save_file({"emb_params": torch.randn(2, 32)}, str(embedding))
    embedding.with_name("easynegative.civitai.info").write_text(json.dumps({"trainedWords": ["easynegative"]}))
    checkpoint = tmp_path / "checkpoints" / "tiny.safetensors"
    checkpoint.parent.mkdir()
    ldm_format.save_single_file(StableDiffusionPipeline.from_pretrained(tiny_sd15), checkpoint)
    checkpoint.with_name("tiny.civitai.info").write_text(json.dumps({"trainedWords": ["masterpiece"]}))
    items = {item.path.rsplit("/", 1)[-1]: item for item in library.import_path(tmp_path)
             if item.status == ImportStatus.IMPORTED}
    assert library.registry.get(items["easynegative.safetensors"].model_id).trigger_words == ("easynegative",)
    assert library.registry.get(items["tiny.safetensors"].model_id).trigger_words == ()


def test_words_set_by_a_person_are_cleaned_kept_and_read_again(library, style_lora):
    (item,) = library.import_path(style_lora)
    library.registry.set_notes(item.model_id, ("  8-bit ", "", "8-BIT", "sprite"), 0.9)
    library.registry.close()
    again = Registry(library.registry.database)
    try:
        model = again.get(item.model_id)
        assert (model.trigger_words, model.preferred_weight) == (("8-bit", "sprite"), 0.9)
        again.set_notes(item.model_id, (), 99.0)  # out of range: the default
        assert (again.get(item.model_id).trigger_words, again.get(item.model_id).preferred_weight) == ((), None)
    finally:
        again.close()


def test_a_damaged_row_reads_as_no_words(library, style_lora):
    (item,) = library.import_path(style_lora)
    with sqlite3.connect(library.registry.database) as db:
        db.execute("UPDATE models SET trigger_words = ?, preferred_weight = ? WHERE id = ?",
                   ('{"not": "a list"', "heavy", item.model_id))
    model = library.registry.get(item.model_id)
    assert (model.trigger_words, model.preferred_weight) == ((), None)


def test_a_registry_from_before_trigger_words_keeps_its_models(tmp_path):
    """The version before kept no notes: its models read with none, and take them once set."""
    from hypersd_desktop.core.database import Database
    from hypersd_desktop.models.registry import MIGRATIONS

    path = tmp_path / "models.sqlite3"
    older = Database(path, MIGRATIONS[:2])
    older.execute("INSERT INTO models (id, name, kind, architecture, layout, path, size, source, owned, added) "
                  "VALUES ('ink', 'ink', 'lora', 'sd15', 'file', '/loras/ink.safetensors', 10, 'import-reference', 0, 1)")
    older.close()
    registry = Registry(path)
    try:
        model = registry.get("ink")
        assert (model.name, model.trigger_words, model.preferred_weight) == ("ink", (), None)
        assert [model.id for model in registry.unread_notes()] == ["ink"]
        registry.set_notes("ink", ("ink wash",), 0.7)
        assert registry.get("ink").trigger_words == ("ink wash",) and registry.unread_notes() == []
    finally:
        registry.close()


def test_the_words_of_loras_imported_before_are_read_once(library, style_lora):
    """As the Models tab does at start for a registry from the version before: each LoRA's header and notes are
    read once; one read without words is not read again."""
    (item,) = library.import_path(style_lora)
    other = style_lora.with_name("plain.safetensors")
    other.write_bytes(style_lora.read_bytes())
    (plain,) = library.import_path(other)
    with sqlite3.connect(library.registry.database) as db:  # as the migration leaves the rows of before
        db.execute("UPDATE models SET trigger_words = NULL, preferred_weight = NULL")
    style_lora.with_name("pixel-art.json").write_text(json.dumps({"activation text": "8-bit", "preferred weight": 1.2}))
    assert {model.id for model in library.registry.unread_notes()} == {item.model_id, plain.model_id}
    assert library.complete_notes() == 2  # both headers name a trigger phrase
    model = library.registry.get(item.model_id)
    assert (model.trigger_words, model.preferred_weight) == (("8-bit", "pixelart", "retro game"), 1.2)
    assert library.registry.unread_notes() == [] and library.complete_notes() == 0


def test_a_lora_whose_words_the_prompt_lacks_is_noted(library, style_lora):
    (item,) = library.import_path(style_lora)
    path = library.registry.get(item.model_id).path
    assert library.unprompted_words([path, path, "/not/installed.safetensors"], "a castle, Retro Game style") == []
    assert library.unprompted_words([path], "a castle") == [
        "pixel-art is applied, but the prompt has none of its trigger words (pixelart, retro game); it may show "
        "little without them."]


def test_the_picture_beside_a_model_file_is_found_as_other_tools_name_it(tmp_path):
    from hypersd_desktop.models.model_notes import preview_beside

    lora = tmp_path / "ink.v2.safetensors"
    assert preview_beside(lora) is None
    for name in ("ink.v2.webp", "ink.v2.preview.jpeg", "ink.v2.png", "ink.png"):
        (tmp_path / name).write_bytes(b"picture")
    assert preview_beside(lora).name == "ink.v2.preview.jpeg"  # the one made to show it, before a plain one
    (tmp_path / "ink.v2.preview.jpeg").unlink()
    assert preview_beside(lora).name == "ink.v2.png"


def test_the_tags_of_a_loras_training_captions_are_counted_across_its_folders():
    from hypersd_desktop.models.model_notes import training_tags

    header = {"ss_tag_frequency": json.dumps({
        "10_sks dog": {"sks": 40, "dog": 38, " grass ": 5, "x" * 500: 90, "": 9, "bad": "7", "neg": -3},
        "5_reg": {"dog": 20, "Sky": 5}, "junk": ["a list"]})}
    assert training_tags(header) == [("dog", 58), ("sks", 40), ("grass", 5), ("Sky", 5)]
    assert training_tags(header, limit=1) == [("dog", 58)]
    for damaged in ({}, {"ss_tag_frequency": "{not json"}, {"ss_tag_frequency": "[1, 2]"},
                    {"ss_tag_frequency": "[" * 100_000}):
        assert training_tags(damaged) == []
