"""The Generate tab's Detail faces (ADetailer's face pass): asked for with the installed pose models, made by the
worker after the image, said in the PNG, and brought back by reuse."""

from __future__ import annotations

from PIL import Image

from hypersd_desktop.engine.types import FaceDetail
from hypersd_desktop.ui.face_detail import NO_FACE_MODELS
from hypersd_desktop.ui.generate_form import select_size
from ui_helpers import WAIT


def test_detail_faces_needs_the_pose_models_makes_the_pass_and_comes_back_on_reuse(qtbot, parts, pose_models):
    window, row = parts.window, parts.window.face_detail
    window.prompt.setPlainText("two friends on a bench")
    assert window.build_request().face_detail is None and not row.strength.isEnabled()  # off at first
    row.enabled.setChecked(True)
    assert row.strength.isEnabled() and row.prompt.isEnabled()
    assert window.build_request() is None and NO_FACE_MODELS in window.errors.text()
    model, detector = (parts.library.import_path(path)[0] for path in pose_models)
    window.models.models_changed.emit()
    select_size(window.size_box, 64, 64)  # the model lists were refilled: the quick size again
    row.strength.setValue(0.5)
    row.confidence.setValue(0.1)
    row.padding.setValue(8)
    row.prompt.setText("freckles")
    asked = window.build_request()
    assert asked.face_detail == FaceDetail(model.path, detector.path, strength=0.5, prompt="freckles", padding=8,
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
    dialog.close()
