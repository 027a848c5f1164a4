"""The WD tagger (engine/tagger.py): the picture read as the taggers' own demo reads it (on white, padded to a square,
bicubic, BGR 0–255), tags over their thresholds, characters first, each by score, in a prompt's words."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hypersd_desktop.core.errors import InputError, ModelFormatError
from hypersd_desktop.engine.tagger import Tag, Tagger, is_tagger, picture_input, tagger_files
from tiny_models import TINY_TAGS, save_tagger


@pytest.fixture(scope="module")
def tagger_folder(tmp_path_factory):
    return save_tagger(tmp_path_factory.mktemp("tagger") / "wd-tiny-tagger")


def names(description) -> list[str]:
    return [tag.name for tag in description.tags]


def test_a_picture_is_read_in_bgr_and_its_tags_come_characters_first_then_by_score(tagger_folder):
    tagger = Tagger(tagger_folder)
    red = tagger.describe(Image.new("RGB", (96, 96), "red"))
    assert names(red) == ["red_background", "cosplay_(costume)", "^_^", "long_hair"]
    assert red.prompt == "red background, cosplay \\(costume\\), ^_^, long hair"
    assert [tag.score for tag in red.tags] == sorted((tag.score for tag in red.tags), reverse=True)
    assert (red.rating, red.rating_score) == ("general", pytest.approx(1 / (1 + np.exp(-2)), abs=1e-4))
    blue = tagger.describe(Image.new("RGB", (96, 96), "blue"))
    assert names(blue)[0] == "blue_theme" and "red_background" not in names(blue)
    green = tagger.describe(Image.new("RGB", (96, 96), (0, 255, 0)))
    assert names(green)[0] == "hatsune_miku" and green.tags[0].category == 4


def test_thresholds_choose_the_tags(tagger_folder):
    tagger = Tagger(tagger_folder)
    red = Image.new("RGB", (64, 64), "red")
    assert names(tagger.describe(red, threshold=0.6)) == ["red_background", "cosplay_(costume)"]
    assert "long_hair" not in names(tagger.describe(red, threshold=0.46))
    green = Image.new("RGB", (64, 64), (0, 255, 0))
    assert "hatsune_miku" not in names(tagger.describe(green, character_threshold=0.999))
    assert tagger.describe(red, threshold=1.0).tags == ()
    with pytest.raises(InputError, match="from 0 to 1"):
        tagger.describe(red, threshold=1.5)


def test_a_picture_is_padded_to_a_square_with_white_and_laid_on_white():
    wide = Image.new("RGB", (40, 20), "red")
    array = picture_input(wide, 40)
    assert array.shape == (1, 40, 40, 3) and array.dtype == np.float32
    assert array[0, 0, 0].tolist() == [255, 255, 255]  # the padding above
    assert array[0, 20, 20].tolist() == [0, 0, 255]  # red, in BGR
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert picture_input(clear, 20).min() == 255  # transparent is white, not black
    assert picture_input(Image.new("RGB", (900, 300), "blue"), 448).shape == (1, 448, 448, 3)


def test_a_transparent_picture_scores_white(tagger_folder):
    assert "white_background" in names(Tagger(tagger_folder).describe(Image.new("RGBA", (50, 50), (255, 0, 0, 0))))


def test_a_model_that_gives_logits_is_read_through_a_sigmoid(tmp_path, tagger_folder):
    logits = Tagger(save_tagger(tmp_path / "logits", logits=True))
    picture = Image.new("RGB", (64, 64), "red")
    assert logits.describe(picture) == Tagger(tagger_folder).describe(picture)


def test_a_model_exported_in_fp16_takes_its_picture_in_fp16(tmp_path, tagger_folder):
    half = Tagger(save_tagger(tmp_path / "fp16", half=True))
    picture = Image.new("RGB", (64, 64), "blue")
    assert half.half and names(half.describe(picture)) == names(Tagger(tagger_folder).describe(picture))


def test_an_input_size_left_open_reads_at_448(tmp_path):
    tagger = Tagger(save_tagger(tmp_path / "dynamic", side="dynamic"))
    assert tagger.side == 448
    assert names(tagger.describe(Image.new("RGB", (30, 30), "red")))[0] == "red_background"
    assert Tagger(save_tagger(tmp_path / "small", side=224)).side == 224


def test_comfyuis_layout_an_onnx_file_with_its_csv_beside_it(tmp_path):
    model = save_tagger(tmp_path, names=("wd-v1-4-moat-tagger-v2.onnx", "wd-v1-4-moat-tagger-v2.csv"))
    assert is_tagger(model) and tagger_files(model) == (model, tmp_path / "wd-v1-4-moat-tagger-v2.csv")
    assert names(Tagger(model).describe(Image.new("RGB", (8, 8), "red")))[0] == "red_background"
    assert not is_tagger(tmp_path) and not is_tagger(tmp_path / "missing.onnx")


def test_words_of_tags_as_a_prompt_writes_them():
    assert Tag("long_hair", 0.9).words == "long hair"
    assert Tag("^_^", 0.9).words == "^_^" and Tag("o_o", 0.9).words == "o_o"
    assert Tag("cosplay_(costume)", 0.9).words == "cosplay \\(costume\\)"
    assert Tag(":\\", 0.9).words == ":\\\\"


def test_a_model_and_a_tag_list_of_two_taggers_are_refused(tmp_path):
    folder = save_tagger(tmp_path / "mixed")
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n1,general,9,5\n", encoding="utf-8")
    with pytest.raises(ModelFormatError, match=f"scores {len(TINY_TAGS)} tags but its list holds 1"):
        Tagger(folder).describe(Image.new("RGB", (8, 8)))


@pytest.mark.parametrize("text, message", [
    ("id,word\n1,cat\n", "no `name` column"),
    ("tag_id,name,category,count\n1,cat,many,3\n", "line 2: the category 'many' is no number"),
    ("tag_id,name,category,count\n1,cat,inf,3\n", "line 2: the category 'inf' is no number"),
    ("tag_id,name,category,count\n", "lists no tags"),
])
def test_a_file_that_is_no_tag_list_is_refused(tmp_path, text, message):
    folder = save_tagger(tmp_path / "bad")
    (folder / "selected_tags.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ModelFormatError, match=message):
        Tagger(folder)


def test_tags_are_left_out_and_words_put_first_however_they_are_written():
    from hypersd_desktop.engine.tagger import Description

    seen = Description((Tag("hatsune_miku", 0.9, 4), Tag("long_hair", 0.8), Tag("cosplay_(costume)", 0.7),
                        Tag("^_^", 0.6)), "general", 0.9)
    assert seen.without("Long Hair, cosplay \\(costume\\), nothing_here").prompt == "hatsune miku, ^_^"
    assert seen.without("").tags == seen.tags and seen.without(" , ").rating == "general"
    assert seen.prompt_after("mychar, ^_^") == "mychar, ^_^, hatsune miku, long hair, cosplay \\(costume\\)"
    assert seen.prompt_after("") == seen.prompt


def test_a_tag_list_written_by_pandas_reads_its_numbers_as_numbers(tmp_path):
    """Tag lists re-saved with pandas (as some taggers' repositories hold them) write every number as a float:
    `9999999.0,general,9.0,1589178.0`."""
    from hypersd_desktop.engine.tagger import read_tag_list

    listed = tmp_path / "selected_tags.csv"
    listed.write_text("tag_id,name,category,count\n9999999.0,general,9.0,1589178.0\n470575.0,1girl,0.0,5113288.0\n"
                      "1.0,hatsune_miku,4.0,9.0\n", encoding="utf-8")
    assert read_tag_list(listed) == (("general", 9), ("1girl", 0), ("hatsune_miku", 4))


def test_a_damaged_model_and_a_missing_file_say_what_to_do(tmp_path):
    folder = save_tagger(tmp_path / "damaged")
    (folder / "model.onnx").write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelFormatError, match="not an ONNX model ONNX Runtime can run.*download or import"):
        Tagger(folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(InputError, match="lacks model.onnx"):
        Tagger(folder)
