"""Prompt styles as A1111 applies, finds and stores them: `{prompt}` or after the prompt with ", ", styles found
again in a reused prompt, and style lists read as people's real files are written (A1111's CSV with a byte-order
mark and CRLF, its first "name,text" version, Excel's semicolons and cp1252, headings, comments, merge conflict
markers; Fooocus's JSON lists)."""

from __future__ import annotations

import csv
import json

import pytest

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.prompt_styles import (
    PromptStyle, StyleBook, apply_styles, merge, merged, parse_csv, read_styles, take_out, unapplied, write_styles,
)

CINEMATIC = PromptStyle("Cinematic", "cinematic still of {prompt}, film grain", "cartoon, {prompt}, drawing")
MASTERPIECE = PromptStyle("Masterpiece", "masterpiece, best quality", "lowres")
NEGATIVE_ONLY = PromptStyle("No text", "", "text, watermark")
HEADING = PromptStyle("---- Photography ----")


def test_styles_apply_as_a1111_merges_them_in_the_order_chosen():
    # A1111's documented examples (modules/styles.py)
    assert merge("masterpiece", "1girl, art by greg") == "1girl, art by greg, masterpiece"
    assert merge("masterpiece, {prompt}", "1girl, art by greg") == "masterpiece, 1girl, art by greg"
    assert merge("masterpiece", "  ") == "masterpiece" and merge("", " a cat ") == "a cat"
    assert apply_styles("a cat", "blurry", [CINEMATIC, MASTERPIECE]) == (
        "cinematic still of a cat, film grain, masterpiece, best quality", "cartoon, blurry, drawing, lowres")
    assert apply_styles("a cat", "blurry", [MASTERPIECE, CINEMATIC]) == (
        "cinematic still of a cat, masterpiece, best quality, film grain", "cartoon, blurry, lowres, drawing")
    assert apply_styles("a cat", "", [NEGATIVE_ONLY, HEADING]) == ("a cat", "text, watermark")


def test_styles_are_found_again_in_the_prompts_they_made():
    styles = [HEADING, NEGATIVE_ONLY, MASTERPIECE, CINEMATIC]
    for chosen in ([CINEMATIC], [MASTERPIECE, CINEMATIC], [CINEMATIC, MASTERPIECE], [NEGATIVE_ONLY, MASTERPIECE]):
        prompt, negative = apply_styles("a red fox, (snow:1.2)", "blurry", chosen)
        assert take_out(prompt, negative, styles) == ([s.name for s in chosen], "a red fox, (snow:1.2)", "blurry")
        assert unapplied(prompt, chosen) == "a red fox, (snow:1.2)" and unapplied(negative, chosen, True) == "blurry"
    # A1111's: a style matches only where its prompt and its negative prompt both do
    assert take_out("a fox, masterpiece, best quality", "blurry", styles) == ([], "a fox, masterpiece, best quality",
                                                                          "blurry")
    assert take_out("exquisite, a fox", "", [PromptStyle("M", "masterpiece, {prompt}")]) == ([], "exquisite, a fox", "")
    assert unapplied("a fox", [MASTERPIECE]) is None
    assert take_out("a very sharp focus", "", [PromptStyle("Sharp", "sharp focus")]) == ([], "a very sharp focus", "")
    # made without guidance, the negative prompt was not read (nor written): the prompt alone says
    prompt = apply_styles("a fox", "", [CINEMATIC])[0]
    assert take_out(prompt, "", styles) == ([], prompt, "")
    assert take_out(prompt, "", styles, negative_read=False) == (["Cinematic"], "a fox", "")
    # one style's text ending another's: the one with more text is the style applied
    short, long = PromptStyle("Nude", "", "nude"), PromptStyle("SFW", "", "NSFW, nude")
    assert take_out("a fox", "blurry, NSFW, nude", [short, long]) == (["SFW"], "a fox", "blurry")
    # `{prompt}` twice: the prompt typed, at each place
    twice = PromptStyle("Twice", "{prompt}, in the style of {prompt}")
    assert take_out(*apply_styles("a fox", "", [twice]), [twice]) == (["Twice"], "a fox", "")
    assert take_out("a fox, in the style of a cat", "", [twice])[0] == []
    # only the prompt typed: nothing to take out; an empty prompt styled comes back empty
    assert take_out("a fox", "", styles) == ([], "a fox", "")
    assert take_out(*apply_styles("", "", [MASTERPIECE]), styles) == (["Masterpiece"], "", "")
    assert take_out(*apply_styles("", "", [CINEMATIC]), styles) == (["Cinematic"], "", "")


def test_a1111_styles_files_are_read_as_written(tmp_path):
    # as A1111 writes it: a byte-order mark, CRLF, quoted cells with commas, quotes and a line break
    rows = [("name", "prompt", "negative_prompt"), ("Cinematic", 'cinematic, "film" grain, {prompt}', "cartoon"),
            ("Two lines", "first\nsecond", ""), ("Only negative", "", "text, watermark")]
    path = tmp_path / "styles.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as stream:
        csv.writer(stream).writerows(rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfname,prompt,negative_prompt\r\n")
    assert read_styles(path) == [PromptStyle(*row) for row in rows[1:]]

    # A1111's first version: name,text; extra columns, short rows, blank lines, comments, headings, a merge's conflict
    # markers, and a name given twice (the later one counts)
    path.write_text("name, text, description\n\nOld,old style words,a note\n# Hidden,never,\nShort\n"
                    "<<<<<<< HEAD\n=======\n>>>>>>> theirs\n---- Heading ----,,\nOld,newer words\n", encoding="utf-8")
    assert read_styles(path) == [PromptStyle("Old", "newer words"), PromptStyle("Short"),
                                 PromptStyle("---- Heading ----")]
    assert PromptStyle("---- Heading ----").empty

    # Excel's: semicolons where the decimal point is a comma, cp1252 where it does not save UTF-8
    path.write_bytes("name;prompt;negative_prompt\r\nCaf\xe9;(caf\xe9 au lait:1,2), {prompt};\r\n".encode("cp1252"))
    assert read_styles(path) == [PromptStyle("Café", "(café au lait:1,2), {prompt}", "")]

    path.write_text("file,size\na.png,10\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a styles file"):
        read_styles(path)
    assert parse_csv("") == [] and parse_csv("name,prompt,negative_prompt\r\n") == []


def test_fooocus_and_prompt_styler_json_lists_are_read(tmp_path):
    path = tmp_path / "sdxl_styles_fooocus.json"
    path.write_text(json.dumps([
        {"name": "Fooocus Sharp", "prompt": "cinematic still {prompt} . sharp focus", "negative_prompt": "blurry"},
        {"name": "Fooocus Masterpiece", "prompt": "(masterpiece), {prompt}"},
        {"name": "", "prompt": "no name"}, {"prompt": "no name either"}, "not a style",
        {"name": "Odd", "prompt": 3, "negative_prompt": None},
    ]), encoding="utf-8")
    assert read_styles(path) == [PromptStyle("Fooocus Sharp", "cinematic still {prompt} . sharp focus", "blurry"),
                                 PromptStyle("Fooocus Masterpiece", "(masterpiece), {prompt}"), PromptStyle("Odd")]
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        read_styles(path)
    path.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(InputError, match="not a style list"):
        read_styles(path)


def test_styles_are_written_for_a1111_to_read_and_the_file_replaced_is_kept(tmp_path):
    path = tmp_path / "styles.csv"
    first = [CINEMATIC, PromptStyle("Quote", 'a "quoted", word\nand a line', "")]
    write_styles(path, first)
    assert not path.with_name("styles.csv.bak").exists()
    with open(path, encoding="utf-8-sig", newline="") as stream:  # as A1111 reads it (modules/styles.py)
        rows = list(csv.DictReader(stream, skipinitialspace=True))
    assert [(row["name"], row["prompt"], row["negative_prompt"]) for row in rows] == [
        (s.name, s.prompt, s.negative_prompt) for s in first]
    assert read_styles(path) == first

    book = StyleBook(path)
    assert book.changed() and book.load() == first and book.named(["Quote", "Cinematic"]) == first[::-1]
    assert not book.changed()
    with pytest.raises(InputError, match="No style is named 'Gone'"):
        book.named(["Gone"])
    book.save([MASTERPIECE])
    assert read_styles(path) == [MASTERPIECE] and read_styles(path.with_name("styles.csv.bak")) == first
    assert not book.changed()
    write_styles(path, [MASTERPIECE, CINEMATIC])  # edited outside the app
    assert book.changed()

    combined, replaced = merged(first, [PromptStyle("Cinematic", "new"), MASTERPIECE])
    assert replaced == 1 and combined == [PromptStyle("Cinematic", "new"), first[1], MASTERPIECE]

    path.write_bytes(b"\x00\xff not, a, csv")
    assert book.load() == [] and "not a styles file" in book.problem
