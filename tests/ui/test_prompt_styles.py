"""Prompt styles in the window (A1111's Styles): chosen under the prompt boxes, added to the prompts of the request in
the order chosen, found again when an image is reused (ours or A1111's), written into the prompt boxes on demand, and
edited, made from the prompt and imported in a dialog that writes A1111's styles.csv."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from hypersd_desktop.core.paths import AppPaths
from hypersd_desktop.core.prompt_styles import PromptStyle, apply_styles, read_styles, styles_file, write_styles
from hypersd_desktop.gallery.formats import parse_chunks
from hypersd_desktop.ui.prompt_styles import StylesDialog
from hypersd_desktop.ui.shortcuts import shortcut_rows

CINEMATIC = PromptStyle("Cinematic", "cinematic still of {prompt}, film grain", "cartoon, {prompt}")
MASTERPIECE = PromptStyle("Masterpiece", "masterpiece, best quality", "lowres")
HEADING = PromptStyle("---- Photography ----")


def with_styles(window, *styles: PromptStyle) -> None:
    write_styles(styles_file(AppPaths.default()), list(styles))
    window.prompt_styles.reload()


def item(picker, name: str):
    (found,) = [picker.list.item(row) for row in range(picker.list.count()) if picker.list.item(row).text() == name]
    return found


def guided(window) -> None:
    """A plain model with guidance: the negative prompt is read."""
    window.hyper_box.setCurrentIndex(0)
    window.guidance.setValue(5.0)
    assert window.negative.isEnabled()


def test_chosen_styles_add_their_words_in_the_order_checked_and_reuse_finds_them_again(qtbot, idle_app):
    window = idle_app.window
    picker = window.prompt_styles
    assert any(keys == "Ctrl+Shift+S" for _, keys, _ in shortcut_rows(window))
    with_styles(window, HEADING, MASTERPIECE, CINEMATIC)
    heading = item(picker, HEADING.name)
    assert not heading.flags() & Qt.ItemFlag.ItemIsUserCheckable and heading.font().bold()  # a heading: no words
    assert picker.button.text() == "none" and not picker.apply_button.isEnabled()
    item(picker, "Cinematic").setCheckState(Qt.CheckState.Checked)  # as a click on its box
    item(picker, "Masterpiece").setCheckState(Qt.CheckState.Checked)
    assert picker.chosen_names() == ["Cinematic", "Masterpiece"] and picker.button.text() == "Cinematic + 1 more"

    guided(window)
    window.prompt.setPlainText("a red fox")
    window.negative.setPlainText("blurry")
    asked = window.build_request()
    assert (asked.prompt, asked.negative_prompt) == apply_styles("a red fox", "blurry", [CINEMATIC, MASTERPIECE])
    assert asked.prompt == "cinematic still of a red fox, film grain, masterpiece, best quality"
    assert asked.negative_prompt == "cartoon, blurry, lowres"

    # reusing its request: the prompt boxes get the words typed, the styles are chosen again, the request is the same
    picker.choose([])
    window.prompt.setPlainText("something else")
    window.apply_request(asked)
    assert window.prompt.toPlainText() == "a red fox" and window.negative.toPlainText() == "blurry"
    assert picker.chosen_names() == ["Cinematic", "Masterpiece"] and window.build_request() == asked

    # a guidance-free Hyper-SD file reads no negative prompt: the styles add none either
    window.hyper_box.setCurrentIndex(1)
    free = window.build_request()
    assert not window.negative.isEnabled() and free.negative_prompt == "" and free.prompt == asked.prompt
    picker.choose([])
    window.apply_request(free)  # found by the prompt alone
    assert picker.chosen_names() == ["Cinematic", "Masterpiece"] and window.build_request() == free

    # an A1111 image whose prompt its styles made (A1111 writes the prompt with them): the same, as A1111's paste
    text = (f"{asked.prompt}\nNegative prompt: {asked.negative_prompt}\nSteps: 4, Sampler: Euler a, CFG scale: 5, "
            "Seed: 7, Size: 512x512")
    picker.choose([])
    window.apply_metadata(parse_chunks({"parameters": text}))
    assert window.prompt.toPlainText() == "a red fox" and picker.chosen_names() == ["Cinematic", "Masterpiece"]
    # a prompt no style made: the styles chosen before are unchecked, so the image is made as it was
    window.apply_metadata(parse_chunks({"parameters": "a castle, masterpiece\nSteps: 4, Seed: 7, Size: 512x512"}))
    assert window.prompt.toPlainText() == "a castle, masterpiece" and picker.chosen_names() == []


def test_the_hires_prompts_take_the_styles_and_give_them_back(qtbot, idle_app):
    window = idle_app.window
    with_styles(window, CINEMATIC)
    window.prompt_styles.choose(["Cinematic"])
    window.prompt.setPlainText("a castle")
    window.hires_scale.setValue(2.0)
    window.hires_prompt.setText("a castle, moss")
    asked = window.build_request()
    assert asked.hires_prompt == "cinematic still of a castle, moss, film grain"
    window.prompt_styles.choose([])
    window.hires_prompt.clear()
    window.apply_request(asked)
    assert window.hires_prompt.text() == "a castle, moss" and window.build_request() == asked

    # a Hires prompt without the styles the prompt has: none are taken out, so nothing is added twice
    unstyled = asked.replace(hires_prompt="a castle, ivy")
    window.apply_request(unstyled)
    assert window.prompt_styles.chosen_names() == [] and window.prompt.toPlainText() == asked.prompt
    assert window.build_request() == unstyled


def test_apply_to_prompt_writes_the_styles_into_the_boxes_as_one_undoable_step(qtbot, idle_app):
    window = idle_app.window
    picker = window.prompt_styles
    with_styles(window, CINEMATIC)
    picker.choose(["Cinematic"])
    window.prompt.setPlainText("a lighthouse")
    window.negative.setPlainText("")
    before = window.build_request(quiet=True)
    picker.apply_button.click()
    assert window.prompt.toPlainText() == "cinematic still of a lighthouse, film grain"
    assert window.negative.toPlainText() == "cartoon, "  # A1111 writes exactly this: {prompt} of an empty prompt
    assert picker.chosen_names() == [] and window.build_request(quiet=True).prompt == before.prompt
    window.prompt.undo()
    assert window.prompt.toPlainText() == "a lighthouse"


def test_the_styles_dialog_makes_edits_imports_and_saves_a1111s_file(qtbot, idle_app, tmp_path):
    window = idle_app.window
    with_styles(window, MASTERPIECE)
    window.prompt.setPlainText("a red fox, watercolor")
    dialog = StylesDialog(window.prompt_styles.book, "a red fox, watercolor", "blurry", window)
    qtbot.addWidget(dialog)
    dialog.from_prompt.click()  # a style of the prompt boxes' words, as A1111's Save style
    assert dialog.name.text() == "My style" and dialog.style_prompt.toPlainText() == "a red fox, watercolor"
    dialog.name.clear()
    qtbot.keyClicks(dialog.name, "Watercolor")
    dialog.style_prompt.setPlainText("{prompt}, watercolor, wet paper")
    assert dialog.preview.toPlainText().startswith("a red fox, watercolor, watercolor, wet paper")

    fooocus = tmp_path / "sdxl_styles_fooocus.json"
    fooocus.write_text(json.dumps([{"name": "Fooocus Sharp", "prompt": "{prompt} . sharp", "negative_prompt": "x"},
                                   {"name": "Masterpiece", "prompt": "(masterpiece)"}]), encoding="utf-8")
    dialog.import_file(fooocus)
    assert "Imported 2 styles" in dialog.message.text() and "1 of the same name replaced" in dialog.message.text()
    dialog.import_file(tmp_path / "missing.csv")
    assert "could not be read" in dialog.message.text()

    dialog.new_button.click()
    dialog.name.clear()
    qtbot.keyClicks(dialog.name, "Watercolor")  # a name twice: said, and nothing written
    dialog.save()
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert "Two styles are named 'Watercolor'" in dialog.message.text()
    assert read_styles(styles_file(AppPaths.default())) == [MASTERPIECE]
    dialog.delete()
    dialog.save()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert read_styles(styles_file(AppPaths.default())) == [
        PromptStyle("Masterpiece", "(masterpiece)"),
        PromptStyle("Watercolor", "{prompt}, watercolor, wet paper", "blurry"),  # the negative prompt's words too
        PromptStyle("Fooocus Sharp", "{prompt} . sharp", "x")]
    window.prompt_styles.reload()
    assert [window.prompt_styles.list.item(row).text() for row in range(3)] == [
        "Masterpiece", "Watercolor", "Fooocus Sharp"]
    write_styles(styles_file(AppPaths.default()), [CINEMATIC])  # styles.csv edited outside the app
    window.prompt_styles.menu.aboutToShow.emit()  # the list opening: read again
    assert [window.prompt_styles.list.item(row).text() for row in range(window.prompt_styles.list.count())] == [
        "Cinematic"]


def test_a_batch_job_adds_the_generate_tabs_styles_to_each_prompt(qtbot, idle_app, tmp_path):
    """As A1111 adds the chosen styles to its prompt-file lines: each item's prompt, and its negative prompt where
    guidance reads one; unchecked, the prompts are the lines; the job's id follows the styles (a job made with
    other styles is another job, not one to continue)."""
    window = idle_app.window
    with_styles(window, CINEMATIC, MASTERPIECE)
    window.prompt_styles.choose(["Masterpiece", "Cinematic"])
    dialog = window.open_batch()
    assert dialog.use_styles.isVisibleTo(dialog) and "Masterpiece, Cinematic" in dialog.use_styles.text()
    dialog.prompts.setPlainText('a red fox\n--prompt "an owl" --negative_prompt "fog" --cfg_scale 6\n')
    assert dialog.hyper_box.currentData() is not None  # the Hyper-SD LoRA: no guidance unless a line asks for it
    dialog.select_size(64, 64)
    dialog.folder.setText(str(tmp_path / "batch"))
    styled = dialog.build_spec()
    chosen = [MASTERPIECE, CINEMATIC]
    assert [(unit.request.prompt, unit.request.negative_prompt) for unit in styled.units] == [
        (apply_styles("a red fox", "", chosen)[0], ""),  # no negative prompt read: no styles' words in it
        apply_styles("an owl", "fog", chosen)]  # guided (CFG 6): both
    dialog.use_styles.setChecked(False)
    plain = dialog.build_spec()
    assert [(unit.request.prompt, unit.request.negative_prompt) for unit in plain.units] == [("a red fox", ""),
                                                                                           ("an owl", "fog")]
    assert plain.batch_id != styled.batch_id
    dialog.close()

    window.prompt_styles.choose([])
    bare = window.open_batch()
    assert not bare.use_styles.isVisibleTo(bare)
    bare.close()


def test_a_plots_styles_axis_adds_each_style_to_those_chosen(qtbot, idle_app):
    """A1111's Styles axis: each value a style added after the Generate tab's; None adds none. The row starts with
    None and styles not chosen already."""
    from hypersd_desktop.engine.plot import Axis

    window = idle_app.window
    with_styles(window, HEADING, CINEMATIC, MASTERPIECE, PromptStyle("Ink", "ink drawing of {prompt}"))
    window.prompt_styles.choose(["Masterpiece"])
    window.prompt.setPlainText("a red fox")
    dialog = window.open_plot()
    dialog.x_row.set_axis(Axis.STYLES)
    assert dialog.x_row.values.text() == "None, Cinematic, Ink"  # no heading, not the one chosen
    spec = dialog.spec()
    assert spec is not None and spec.x.labels() == ["None", "Cinematic", "Ink"]
    assert [cell.request.prompt for cell in spec.cells()] == [
        "a red fox, masterpiece, best quality", "cinematic still of a red fox, masterpiece, best quality, film grain",
        "ink drawing of a red fox, masterpiece, best quality"]
    dialog.x_row.values.setText("None, Oil")
    assert dialog.spec() is None and "no style is named 'Oil'" in dialog.x_row.said.text()

    # A1111's grid of a Styles axis: its first image has the axis's first style after those chosen; reused, only
    # the chosen ones are checked, so the plot made again adds the axis's style once
    made, made_negative = apply_styles("a grey owl", "", [MASTERPIECE, CINEMATIC])
    window.apply_metadata(parse_chunks({"parameters": f"{made}\nNegative prompt: {made_negative}\n"
                                                      "Steps: 4, Sampler: Euler a, CFG scale: 5, Seed: 7, "
                                                      'Size: 64x64, Script: X/Y/Z plot, X Type: Styles, X Values: '
                                                      '"Cinematic, Ink"'}))
    assert window.prompt.toPlainText() == "a grey owl" and window.prompt_styles.chosen_names() == ["Masterpiece"]
    assert (dialog.x_row.axis(), dialog.x_row.values.text()) == (Axis.STYLES, "Cinematic, Ink")
    assert dialog.spec().cells()[0].request.prompt == made
    dialog.close()


def test_each_combination_counts_the_choices_inside_the_chosen_styles(qtbot, idle_app):
    """A style with choices of its own ({oil|ink}) multiplies the combinations "Each combination" makes, and the
    count beside it says so as soon as the style is checked."""
    window = idle_app.window
    with_styles(window, PromptStyle("Medium", "{prompt}, {oil|ink|charcoal} painting"))
    window.prompt.setPlainText("a {red|blue} fox")
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination (2)", timeout=5000)
    window.prompt_styles.choose(["Medium"])
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination (6)", timeout=5000)
    window.prompt_styles.choose([])
    qtbot.waitUntil(lambda: window.every_combination.text() == "Each combination (2)", timeout=5000)
