"""The Generate tab's Detail faces and Detail hands (ADetailer's face and hand passes): asked for with the installed
pose models, made by the worker after the image, said in the PNG, and brought back by reuse."""

from __future__ import annotations

from PIL import Image

from hypersd_desktop.engine.types import DetailPass
from hypersd_desktop.ui.detail_rows import no_models
from hypersd_desktop.ui.generate_form import select_size
from ui_helpers import WAIT


def test_detail_faces_needs_the_pose_models_makes_the_pass_and_comes_back_on_reuse(qtbot, parts, pose_models):
    window, row = parts.window, parts.window.face_detail
    window.prompt.setPlainText("two friends on a bench")
    window.seed.setValue(1)  # an image whose faces the tiny pose models find (at another seed they may find none)
    window.seed_lock.setChecked(True)
    assert window.build_request().face_detail is None and not row.strength.isEnabled()  # off at first
    row.enabled.setChecked(True)
    assert row.strength.isEnabled() and row.prompt.isEnabled()
    assert window.build_request() is None and no_models("face") in window.errors.text()
    model, detector = (parts.library.import_path(path)[0] for path in pose_models)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)  # the model lists were refilled: the quick size again
    row.strength.setValue(0.5)
    row.confidence.setValue(0.1)
    row.padding.setValue(8)
    row.prompt.setText("freckles")
    asked = window.build_request()
    assert asked.face_detail == DetailPass(model.path, detector.path, strength=0.5, prompt="freckles", padding=8,
                                           confidence=0.1)
    shown = []  # the status line as each step comes (the job view reads the step first)
    parts.bridge.progress.connect(lambda _message: shown.append(window.timing.text()))
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    assert any(text.startswith("Detailing faces (1 of ") and " · step 1/" in text for text in shown), shown
    with Image.open(saved.args[0]) as image:
        assert "ADetailer model: face from pose (vitpose-base-simple), ADetailer prompt: freckles" in \
            image.text["parameters"]
    assert not window.errors.text()
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.viewer.show_record(browser.model.record(0))
    assert "the face pass (strength 0.5, its own prompt)" in browser.viewer.details.toPlainText()

    row.enabled.setChecked(False)
    row.prompt.clear()
    assert window.build_request().face_detail is None
    browser.grid.select_position(0)
    browser.reuse_current()
    assert row.enabled.isChecked() and row.prompt.text() == "freckles" and window.build_request() == asked


def test_the_faces_negative_prompt_is_read_where_the_images_is(qtbot, idle_app, pose_models):
    """A recipe without guidance reads no negative prompt: the faces' box is greyed out with the image's, and its
    words are not asked for."""
    window, row = idle_app.window, idle_app.window.face_detail
    for path in pose_models:
        idle_app.library.import_path(path)
    window.prompt.setPlainText("a portrait")
    row.enabled.setChecked(True)
    row.negative.setText("blur")
    window.hyper_box.setCurrentIndex(1)  # the installed Hyper-SD LoRA: no guidance
    assert not window.negative.isEnabled() and not row.negative.isEnabled()
    assert window.build_request().face_detail.negative_prompt == ""
    window.hyper_box.setCurrentIndex(0)  # a plain model, guided
    window.guidance.setValue(5.0)
    assert window.negative.isEnabled() and row.negative.isEnabled()
    assert window.build_request().face_detail.negative_prompt == "blur"
    assert window.apply_request(window.build_request().replace(face_detail=None)) is None
    assert not row.enabled.isChecked() and not row.negative.isEnabled()


def test_a_batch_job_details_faces_as_the_generate_tab_does_unless_told_not_to(qtbot, idle_app, pose_models,
                                                                                tmp_path):
    window, row = idle_app.window, idle_app.window.face_detail
    for path in pose_models:
        idle_app.library.import_path(path)
    dialog = window.open_batch()
    assert not dialog.detail_faces.isVisibleTo(dialog)  # off in the Generate tab: nothing to say
    dialog.close()

    row.enabled.setChecked(True)
    row.strength.setValue(0.35)
    dialog = window.open_batch()
    assert dialog.detail_faces.isVisibleTo(dialog) and "strength 0.35" in dialog.detail_faces.text()
    dialog.prompts.setPlainText("a red fox\nan owl")
    dialog.folder.setText(str(tmp_path / "batch"))
    detailed = dialog.build_spec()
    assert [unit.request.face_detail for unit in detailed.units] == [window.build_request().face_detail] * 2
    dialog.detail_faces.setChecked(False)
    plain = dialog.build_spec()
    assert [unit.request.face_detail for unit in plain.units] == [None, None] and plain.batch_id != detailed.batch_id
    assert not dialog.detail_hands.isVisibleTo(dialog)
    dialog.close()

    window.hand_detail.enabled.setChecked(True)  # the hands too: each pass its own box
    dialog = window.open_batch()
    assert dialog.detail_hands.isVisibleTo(dialog) and "Detail hands, as the Generate tab does (strength 0.4)" == \
        dialog.detail_hands.text()
    dialog.prompts.setPlainText("a red fox")
    dialog.folder.setText(str(tmp_path / "batch"))
    dialog.detail_faces.setChecked(False)
    (unit,) = dialog.build_spec().units
    assert unit.request.face_detail is None and unit.request.hand_detail == window.build_request().hand_detail
    dialog.close()


def test_detail_hands_runs_after_the_faces_and_comes_back_on_reuse(qtbot, parts, pose_models):
    window, faces, hands = parts.window, parts.window.face_detail, parts.window.hand_detail
    window.prompt.setPlainText("two friends waving")
    window.seed.setValue(1)  # an image whose faces and hands the tiny pose models find
    window.seed_lock.setChecked(True)
    hands.enabled.setChecked(True)
    assert window.build_request() is None and no_models("hand") in window.errors.text()
    model, detector = (parts.library.import_path(path)[0] for path in pose_models)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    faces.enabled.setChecked(True)
    for rows in (faces, hands):  # the tiny pose models score their random points 0.1 to 0.3: all of them
        rows.confidence.setValue(0.05)
    hands.strength.setValue(0.6)
    hands.prompt.setText("five fingers")
    asked = window.build_request()
    assert asked.face_detail == DetailPass(model.path, detector.path, confidence=0.05)
    assert asked.hand_detail == DetailPass(model.path, detector.path, strength=0.6, prompt="five fingers",
                                           confidence=0.05)
    shown = []
    parts.bridge.progress.connect(lambda _message: shown.append(window.timing.text()))
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as saved:
        window.generate()
    assert any(text.startswith("Detailing hands (1 of ") and " · step 1/" in text for text in shown), shown
    assert shown.index(next(text for text in shown if text.startswith("Detailing hands"))) > \
        shown.index(next(text for text in shown if text.startswith("Detailing faces")))
    with Image.open(saved.args[0]) as image:
        assert "ADetailer model 2nd: hand from pose (vitpose-base-simple), ADetailer prompt 2nd: five fingers" in \
            image.text["parameters"]
    browser = window.browser
    qtbot.waitUntil(lambda: browser.model.count() == 1, timeout=5000)
    browser.viewer.show_record(browser.model.record(0))
    assert "the face pass (strength 0.4); the hand pass (strength 0.6, its own prompt)" in \
        browser.viewer.details.toPlainText()

    hands.enabled.setChecked(False)
    hands.prompt.clear()
    browser.grid.select_position(0)
    browser.reuse_current()
    assert hands.enabled.isChecked() and hands.prompt.text() == "five fingers" and window.build_request() == asked


def test_a_results_faces_and_hands_alone_are_made_again(qtbot, parts, pose_models):
    """A result's right-click *Make its faces and hands again*: the image itself as the init image with *Faces and
    hands only* ticked, its settings, and Detail hands as set here (the image had none): a new image of its size,
    whose request says so; without a pass on, the window says to turn one on."""
    window, hands = parts.window, parts.window.hand_detail
    for path in pose_models:
        parts.library.import_path(path)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)
    window.prompt.setPlainText("two friends waving")
    window.seed.setValue(1)  # an image whose hands the tiny pose models find (at another seed they may find none,
    window.seed_lock.setChecked(True)  # and there is no new image)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as first:
        window.generate()
    qtbot.waitUntil(lambda: window.results.count() == 1, timeout=WAIT)
    [action] = [a for a in window.results.actions() if a.text() == "Make its faces and hands again"]
    action.trigger()
    assert "Turn Detail faces or Detail hands on first" in window.errors.text()
    hands.enabled.setChecked(True)
    hands.confidence.setValue(0.05)
    window.errors.show_messages([])
    window.results.setCurrentRow(0)
    with qtbot.waitSignal(window.image_saved, timeout=WAIT) as detailed:
        action.trigger()
    assert window.init_image.details_only.isChecked() and not window.init_image.strength.isEnabled()
    from hypersd_desktop.gallery.metadata import read_request

    asked = read_request(detailed.args[0])
    assert asked["detail_only"] is True and asked["hand_detail"]["confidence"] == 0.05
    with Image.open(first.args[0]) as before, Image.open(detailed.args[0]) as after:
        assert before.size == after.size
    window.init_image.details_only.setChecked(False)
    assert window.build_request().detail_only is False and window.init_image.strength.isEnabled()


def test_a_reused_pass_keeps_its_own_steps_guidance_and_size_and_says_so(qtbot, idle_app, pose_models):
    """ADetailer's "use separate steps", "CFG scale" and "inpaint width height", which the rows do not show: reuse
    keeps them in the pass and says so; its own steps and CFG scale are dropped where a recipe's settings stand in
    for the image's; turning the pass off and on drops them all."""
    from hypersd_desktop.gallery.formats import parse_a1111

    window, row = idle_app.window, idle_app.window.face_detail
    for path in pose_models:
        idle_app.library.import_path(path)
    own = ("ADetailer model: face_yolov8n.pt, ADetailer use inpaint width height: True, ADetailer inpaint width: 768, "
           "ADetailer inpaint height: 768, ADetailer use separate steps: True, ADetailer steps: 6, ADetailer use "
           "separate CFG scale: True, ADetailer CFG scale: 2")
    name = window.current_model().name
    made_with = {"Hyper-SD": "a portrait <lora:Hyper-SD15-1step-lora:1>\nSteps: 1, Sampler: TCD, CFG scale: 1",
                 "a plain model": "a portrait\nSteps: 20, Sampler: Euler, CFG scale: 7"}
    window.apply_metadata(parse_a1111(f"{made_with['Hyper-SD']}, Seed: 3, Size: 64x64, Model: {name}, {own}"))
    asked = window.build_request().face_detail
    assert (asked.steps, asked.guidance, asked.width, asked.height) == (6, 2.0, 768, 768)
    assert "reuse does that with Detail faces with its own 6 steps, CFG scale 2 and made at 768 × 768" in \
        window.warnings.text()
    assert "Detail faces runs with its own" not in window.warnings.text()  # said once
    window.apply_metadata(parse_a1111(f"{made_with['a plain model']}, Seed: 3, Size: 64x64, Model: {name}, {own}"))
    asked = window.build_request().face_detail
    assert (asked.steps, asked.guidance, asked.width, asked.height) == (None, None, 768, 768)  # the recipe's
    assert ("reuse does that with Detail faces with made at 768 × 768, which finds the faces with the pose models "
            "(ViTPose Base and RT-DETR in the Models tab). The pass's own 6 steps and CFG scale 2 give way to the "
            "recipe's.") in window.warnings.text()
    row.enabled.setChecked(False)
    row.enabled.setChecked(True)
    assert window.build_request().face_detail == DetailPass(asked.model, asked.detector)  # its own settings gone
    # this app's own request: the rows say what they keep that they do not show
    window.apply_request(window.build_request().replace(face_detail=DetailPass(asked.model, asked.detector, steps=3,
                                                                               width=128, height=96)))
    assert window.build_request().face_detail.steps == 3
    assert "Detail faces runs with its own 3 steps and a size of 128 × 96" in window.warnings.text()


def test_the_masks_shaping_is_set_under_mask_and_comes_back_from_adetailers_fields(qtbot, idle_app, pose_models):
    """ADetailer's mask preprocessing (dilate erode, offsets, area ratios, merge mode): reuse shows it under the
    pass's *Mask* button, which reads "Mask*" and says it, and the request asks for it; set by hand, likewise."""
    from hypersd_desktop.gallery.formats import parse_a1111

    window, row = idle_app.window, idle_app.window.hand_detail
    for path in pose_models:
        idle_app.library.import_path(path)
    assert row.mask.button.text() == "Mask" and "as found" in row.mask.button.toolTip()
    shaped = ("ADetailer model: hand_yolov8n.pt, ADetailer mask min ratio: 0.01, ADetailer mask max ratio: 0.5, "
              "ADetailer x offset: 4, ADetailer y offset: -6, ADetailer dilate erode: 8, ADetailer mask merge invert: "
              "Merge and Invert, ADetailer mask blur: 4")
    name = window.current_model().name
    window.apply_metadata(parse_a1111(f"a wave\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x64, "
                                      f"Model: {name}, {shaped}"))
    asked = window.build_request().hand_detail
    assert (asked.dilate_erode, asked.x_offset, asked.y_offset, asked.min_ratio, asked.max_ratio, asked.merge) == (
        8, 4, -6, 0.01, 0.5, "merge and invert")
    assert (row.mask.dilate.value(), row.mask.merge.currentText()) == (8, "All the rest, in one pass")
    assert row.mask.button.text() == "Mask*"
    assert ("grown 8 px, moved 4 px right, moved 6 px down, 0.01–0.5 of the area, all the rest, in one pass"
            in row.mask.button.toolTip())
    row.mask.dilate.setValue(-3)
    row.mask.merge.setCurrentIndex(row.mask.merge.findData("merge"))
    row.mask.max_ratio.setValue(0.005)  # below the smallest: the smallest stands for both
    asked = window.build_request().hand_detail
    assert (asked.dilate_erode, asked.merge, asked.min_ratio, asked.max_ratio) == (-3, "merge", 0.01, 0.01)
    row.enabled.setChecked(False)
    assert not row.mask.button.isEnabled()
    row.enabled.setChecked(True)

    # typed as in a dialog: the menu open, a value typed, Tab to the next field
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    seen = {}

    def type_in_menu() -> None:
        menu = row.mask.button.menu()
        row.mask.dilate.setFocus()
        QTest.keyClick(row.mask.dilate, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(row.mask.dilate, "12")
        QTest.keyClick(row.mask.dilate, Qt.Key.Key_Tab)
        seen.update(visible=menu.isVisible(), focus=QApplication.focusWidget())
        menu.close()

    QTimer.singleShot(200, type_in_menu)
    row.mask.button.showMenu()  # returns once the menu closes
    assert seen["visible"] and seen["focus"] is row.mask.x_offset
    assert window.build_request().hand_detail.dilate_erode == 12


def test_a_batch_from_pictures_makes_their_faces_alone_with_faces_and_hands_only(qtbot, idle_app, pose_models,
                                                                                tmp_path):
    """The Generate tab's Faces and hands only goes with a batch: the dialog says that each picture keeps all but its
    faces and hands, and its strength, masks, enlarging and ControlNets following each picture, which do not apply,
    are off."""
    window = idle_app.window
    for path in pose_models:
        idle_app.library.import_path(path)
    window.face_detail.enabled.setChecked(True)
    picture = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (20, 90, 160)).save(picture)
    assert window.init_image.load_file(picture)
    window.init_image.details_only.setChecked(True)
    window.prompt.setPlainText("a portrait")
    assert window.build_request().detail_only
    dialog = window.open_batch()
    assert dialog.parts_note.isVisibleTo(dialog) and "faces and hands made again" in dialog.init_note.text()
    assert not dialog.strength.isEnabled()
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    for folder in (photos, masks):
        folder.mkdir()
        Image.new("RGB", (64, 64)).save(folder / "one.png")
    dialog.prompts.setPlainText("a portrait")
    dialog.folder.setText(str(tmp_path / "out"))
    dialog.pictures.setText(str(photos))
    dialog.masks.setText(str(masks))
    dialog.use_pictures.setChecked(True)
    assert not dialog.masks_row.isEnabled() and not dialog.enlarge.isEnabled() and not dialog.strength.isEnabled()
    assert not dialog.follow.isEnabled()  # the passes run without the ControlNets: no maps are made for them
    dialog.enlarge.setValue(2.0)
    (unit,) = dialog.build_spec().units
    request = unit.request
    assert request.detail_only and request.face_detail is not None and request.mask_image is None
    assert request.width is None and request.init_image == window.bridge.inputs.add_file(photos / "one.png")
    dialog.close()
