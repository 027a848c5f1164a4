"""The X/Y/Z plot dialog: axes checked as they are typed, the plot queued as one job from the Generate tab's settings,
each image and then the grid in the strip and the gallery, whose large view names the grid's axes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

from hypersd_desktop.engine.plot import Axis
from hypersd_desktop.gallery.metadata import read_request
from hypersd_desktop.ui.shortcuts import shortcut_rows
from ui_helpers import WAIT


def test_a_plot_from_the_window_makes_each_image_then_the_grid(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a red kite over {the sea|the hills}")  # a dynamic prompt: chosen once, by the seed
    window.seed_lock.setChecked(True)
    window.plot_action.trigger()
    dialog = window._plot_dialog
    assert dialog.isVisible() and dialog.x_row.axis() == Axis.STEPS
    dialog.x_row.values.setText("1-2")
    dialog.y_row.set_axis(Axis.PROMPT, "red, blue")
    assert dialog.summary.text().startswith("2 × 2 = 4 images") and dialog.make_button.isEnabled()
    assert dialog.x_row.said.text() == "2 values: Steps: 1, Steps: 2"
    saved = []
    window.image_saved.connect(saved.append)
    dialog.make_button.click()
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: len(saved) == 5, timeout=WAIT)
    requests = [read_request(path) for path in saved]
    chosen = requests[0]["prompt"].split(" over ")[1]  # one choice for the whole plot
    assert chosen in ("the sea", "the hills")
    red, blue = f"a red kite over {chosen}", f"a blue kite over {chosen}"  # each step count's two as one batch
    assert [(r["steps"], r["prompt"]) for r in requests] == [(1, red), (1, blue), (2, red), (2, blue), (1, red)]
    assert requests[4]["plot"]["X Type"] == "Steps" and requests[4]["plot"]["Y Values"] == "red, blue"
    with Image.open(saved[4]) as grid:
        assert grid.width > 2 * 64 and grid.height > 2 * 64
    strip = window.results  # the grid, latest, named as such
    assert strip.count() == 5 and strip.item(0).data(Qt.ItemDataRole.UserRole) == saved[4]
    assert [strip.item(k).text() for k in range(5)] == [  # the grid, then each image by its place, latest first
        "X/Y/Z plot", "Steps: 2, blue", "Steps: 2, red", "Steps: 1, blue", "Steps: 1, red"]
    qtbot.waitUntil(lambda: window.timing.text().startswith("Done"), timeout=WAIT)

    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 5, timeout=WAIT)
    record = next(browser.model.record(k) for k in range(5) if browser.model.record(k).path == saved[4])
    window._plot_dialog.x_row.set_axis(Axis.SEED, "1, 2")  # changed since
    window.reuse_record(record)  # the grid: its first image's settings, and the plot's axes to make it again
    assert window.build_request().steps == 1 and window.prompt.toPlainText() == requests[0]["prompt"]
    assert (window._plot_dialog.x_row.axis(), window._plot_dialog.x_row.values.text()) == (Axis.STEPS, "1-2")
    assert (window._plot_dialog.y_row.axis(), window._plot_dialog.y_row.values.text()) == (Axis.PROMPT, "red, blue")
    assert "X/Y/Z plot's grid" in window.statusBar().currentMessage()
    browser.viewer.show_record(record)
    assert ("X/Y/Z plot Steps (1-2) × Prompt S/R (red, blue); this is its grid, reuse makes its first image"
            in " ".join(browser.viewer.details.toPlainText().split()))


def test_the_dialog_says_what_is_wrong_before_anything_is_queued(qtbot, idle_app):
    window = idle_app.window
    assert any(what == "X/Y/Z plot" and keys == "Ctrl+Shift+P" for _, keys, what in shortcut_rows(window))
    dialog = window.open_plot()
    assert not dialog.isModal()  # open beside the window: the prompt can be typed meanwhile
    assert "type a prompt there" in dialog.summary.text() and not dialog.make_button.isEnabled()
    window.prompt.setPlainText("a cat in a hat")
    dialog.check()
    assert dialog.summary.text().startswith("4 images") and dialog.make_button.isEnabled()  # Steps 1, 2, 4, 8
    dialog.x_row.values.setText("0, 2")
    assert "Steps 0 cannot be used" in dialog.x_row.said.text() and not dialog.make_button.isEnabled()
    dialog.x_row.set_axis(Axis.PROMPT, "dog, owl")
    assert "'dog' (its first value) is in neither the prompt" in dialog.summary.text()
    assert not dialog.make_button.isEnabled()
    dialog.x_row.values.setText("cat, dog, owl")
    dialog.y_row.set_axis(Axis.PROMPT, "hat, cap")  # two words replaced, one across and one down
    assert dialog.summary.text().startswith("3 × 2 = 6 images")
    dialog.y_row.set_axis(Axis.CLIP_SKIP, "1, 2")
    dialog.x_row.set_axis(Axis.CLIP_SKIP, "1-3")
    assert "X and Y are both Clip skip" in dialog.summary.text()
    dialog.x_row.set_axis(Axis.PROMPT, "cat, dog, owl")
    dialog.y_row.set_axis(Axis.HYPER)  # starts with the Hyper-SD files installed for the model, by name
    assert dialog.y_row.values.text() == "Hyper-SD15-1step-lora" and dialog.make_button.isEnabled()
    dialog.y_row.values.setText("Hyper-SD15-1step-lora, Hyper-SD15-8steps-lora")
    assert "'Hyper-SD15-8steps-lora' is no installed model" in dialog.y_row.said.text()
    assert not dialog.make_button.isEnabled()
    dialog.y_row.set_axis(Axis.MODEL)
    assert dialog.y_row.values.text() == window.current_model().name and dialog.make_button.isEnabled()
    dialog.y_row.set_axis(Axis.VAE)  # the model's own VAE, then those installed for it
    assert dialog.y_row.values.text().startswith("None") and dialog.make_button.isEnabled()
    dialog.y_row.values.setText("None, no such vae")
    assert "'no such vae' is no installed model" in dialog.y_row.said.text()
    dialog.y_row.set_axis(Axis.SEED)  # random seeds, chosen when the plot is queued
    assert dialog.y_row.values.text() == "-1, -1, -1" and dialog.summary.text().startswith("3 × 3 = 9 images")
    dialog.z_row.set_axis(Axis.SEED, "1, 2")
    assert "Y and Z are both Seed" in dialog.summary.text() and not dialog.make_button.isEnabled()
    dialog.z_row.set_axis(Axis.GUIDANCE, "1-2 (+0.5)")  # a grid for each
    assert dialog.summary.text().startswith("3 × 3 × 3 = 27 images, in 3 grids side by side")
    dialog.z_row.set_axis(Axis.STEPS, "1-12")
    assert "3 × 3 × 12 is 108 images; a plot makes at most 100" in dialog.summary.text()
    dialog.z_row.set_axis(Axis.SEED, "-1, 5")
    dialog.y_row.set_axis(None)
    assert dialog.summary.text().startswith("3 × 2 = 6 images, in 2 grids") and dialog.make_button.isEnabled()
    dialog.z_row.set_axis(Axis.GUIDANCE, "1, 2")
    assert not dialog.swap_buttons["XY"].isEnabled() and dialog.swap_buttons["YZ"].isEnabled()  # X is never Nothing
    dialog.swap_buttons["YZ"].click()  # as A1111's buttons: the rows' settings and values change places
    assert (dialog.y_row.axis(), dialog.y_row.values.text(), dialog.z_row.axis()) == (Axis.GUIDANCE, "1, 2", None)
    dialog.swap_buttons["XY"].click()
    assert (dialog.x_row.axis(), dialog.x_row.values.text()) == (Axis.GUIDANCE, "1, 2")
    assert (dialog.y_row.axis(), dialog.y_row.values.text()) == (Axis.PROMPT, "cat, dog, owl")
    assert dialog.summary.text().startswith("2 × 3 = 6 images")
    dialog.swap_buttons["XY"].click()
    dialog.swap_buttons["YZ"].click()
    assert (dialog.x_row.axis(), dialog.y_row.axis(), dialog.z_row.axis()) == (Axis.PROMPT, None, Axis.GUIDANCE)
    dialog.y_row.set_axis(Axis.SEED, "-1, -1, -1")
    submitted = []
    dialog.submit = submitted.append
    dialog.make_button.click()
    (spec,) = submitted
    assert -1 not in spec.y.parsed() and len(set(spec.y.parsed())) == 3 and spec.z.parsed() == [1.0, 2.0]
    assert window.open_plot() is dialog and dialog.x_row.values.text() == "cat, dog, owl"  # kept while open


def test_the_last_plots_axes_come_back_and_the_windows_own_saves_keep_them(qtbot, idle_app):
    """The dialog writes its axes to the settings as a plot is made; the window, which read the settings when it
    started, keeps them (and the batch and export dialogs' folders) when it saves its own choices."""
    from hypersd_desktop.core.settings import load_settings, save_settings
    from hypersd_desktop.ui.plot_dialog import PlotDialog

    window = idle_app.window
    paths = window.library.paths
    window.prompt.setPlainText("a cat in a hat")
    dialog = window.open_plot()
    dialog.submit = lambda spec: None
    dialog.x_row.set_axis(Axis.GUIDANCE, "1-3")
    dialog.y_row.set_axis(Axis.SCHEDULER, "TCD, LCM")
    dialog.z_row.set_axis(Axis.SEED, "1, 2")
    dialog.make_button.click()
    save_settings(load_settings(paths).replace(batch_dir="/data/batches", export_dir="/data/exports"), paths)
    window._remember_choices()  # a Generate, or closing the window
    saved = load_settings(paths)
    assert (saved.plot_x, saved.plot_x_values, saved.plot_y, saved.plot_y_values, saved.plot_z,
            saved.plot_z_values) == ("guidance", "1-3", "scheduler", "TCD, LCM", "seed", "1, 2")
    assert (saved.batch_dir, saved.export_dir) == ("/data/batches", "/data/exports")
    again = PlotDialog(lambda: None, lambda spec: None, paths)  # after a restart
    assert (again.x_row.axis(), again.x_row.values.text()) == (Axis.GUIDANCE, "1-3")
    assert (again.y_row.axis(), again.y_row.values.text()) == (Axis.SCHEDULER, "TCD, LCM")
    assert (again.z_row.axis(), again.z_row.values.text()) == (Axis.SEED, "1, 2")
    save_settings(load_settings(paths).replace(plot_x="size", plot_y="weather"), paths)  # a newer version's axes
    fresh = PlotDialog(lambda: None, lambda spec: None, paths)
    assert fresh.x_row.axis() == Axis.STEPS and fresh.y_row.axis() is None


def test_another_tools_grid_reused_gives_the_plot_dialog_its_axes(qtbot, idle_app):
    from hypersd_desktop.gallery.formats import parse_a1111

    window = idle_app.window
    window.apply_metadata(parse_a1111(
        "1girl, sitting, outdoors\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 1, Size: 64x64, Script: X/Y/Z plot, "
        'X Type: Prompt S/R, X Values: "sitting, standing", Y Type: Prompt S/R, Y Values: "outdoors, indoors"'))
    dialog = window._plot_dialog
    assert (dialog.x_row.axis(), dialog.x_row.values.text()) == (Axis.PROMPT, "sitting, standing")
    assert (dialog.y_row.axis(), dialog.y_row.values.text()) == (Axis.PROMPT, "outdoors, indoors")
    assert "X/Y/Z plot's grid" in window.statusBar().currentMessage()
    window.apply_metadata(parse_a1111("a fox\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 1, Size: 64x64, "
                                      "Script: X/Y/Z plot, X Type: Hires upscaler, X Values: \"a, b\""))
    assert dialog.x_row.values.text() == "sitting, standing"  # a setting not stepped through here: as it was
    assert dialog.z_row.axis() is None
    window.apply_metadata(parse_a1111("a fox\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 1, Size: 64x64, "
                                      "Script: X/Y/Z plot, X Type: Styles, X Values: \"None, Cinematic\""))
    assert (dialog.x_row.axis(), dialog.x_row.values.text()) == (Axis.STYLES, "None, Cinematic")  # A1111's Styles
    window.apply_metadata(parse_a1111(  # A1111's X/Y/Z plot with a Z axis and random seeds: the seeds it chose
        "a fox\nSteps: 4, Sampler: Euler a, CFG scale: 1, Seed: 31, Size: 64x64, Script: X/Y/Z plot, X Type: Seed, "
        'X Values: "-1, -1", Fixed X Values: "31, 4077", Z Type: CFG Scale, Z Values: "1, 2"'))
    assert (dialog.x_row.axis(), dialog.x_row.values.text()) == (Axis.SEED, "31, 4077")
    assert dialog.y_row.axis() is None
    assert (dialog.z_row.axis(), dialog.z_row.values.text()) == (Axis.GUIDANCE, "1, 2")


def test_a_z_axis_from_the_window_makes_a_grid_for_each_of_its_values(qtbot, parts):
    window = parts.window
    window.prompt.setPlainText("a red kite")
    window.seed_lock.setChecked(True)
    dialog = window.open_plot()
    dialog.x_row.set_axis(Axis.STEPS, "1, 2")
    dialog.y_row.set_axis(None)
    dialog.z_row.set_axis(Axis.PROMPT, "red, blue")
    assert dialog.summary.text().startswith("2 × 2 = 4 images, in 2 grids side by side")
    saved = []
    window.image_saved.connect(saved.append)
    dialog.make_button.click()
    qtbot.waitUntil(lambda: len(saved) == 5, timeout=WAIT)
    requests = [read_request(path) for path in saved]
    assert [(r["steps"], r["prompt"]) for r in requests[:4]] == [  # each step count's two as one batch
        (1, "a red kite"), (1, "a blue kite"), (2, "a red kite"), (2, "a blue kite")]
    assert requests[4]["plot"]["Z Type"] == "Prompt S/R" and "Y Type" not in requests[4]["plot"]
    assert [window.results.item(k).text() for k in range(5)] == [
        "X/Y/Z plot", "Steps: 2, blue", "Steps: 2, red", "Steps: 1, blue", "Steps: 1, red"]
    with Image.open(saved[4]) as grid:  # two grids of two side by side
        assert grid.width > 4 * 64 and grid.height > 64
    dialog.z_row.set_axis(None)
    window.reuse_file(Path(saved[4]))
    assert (dialog.z_row.axis(), dialog.z_row.values.text()) == (Axis.PROMPT, "red, blue")
