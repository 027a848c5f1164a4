"""Generation data copied as text (A1111's, Civitai's "Copy generation data", a ComfyUI workflow) pasted into the
prompt box or with File → Paste parameters: the controls take its settings, as from a dropped image's."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from hypersd_desktop.engine.types import MAX_SEED
from hypersd_desktop.gallery.gallery import metadata_chunks
from hypersd_desktop.ui.pasted_parameters import NOTHING_TO_PASTE

CORPUS = Path(__file__).parent.parent / "gallery" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["files"]


def test_a1111_text_pasted_into_the_prompt_box_fills_the_controls(qtbot, idle_app):
    """Forge's text, as its "parameters" chunk holds it (and as Civitai's copy button gives it): the prompt box gets
    the prompt alone, the other controls the rest, and the banner says where the settings came from."""
    window = idle_app.window
    name = "sd-metadata/png/forge.png"
    expected = EXPECTED[name]
    QApplication.clipboard().setText(metadata_chunks(CORPUS / name)["parameters"])
    window.prompt.setFocus()
    qtbot.keyClick(window.prompt, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.prompt.toPlainText() == expected["prompt"].strip()
    assert window.negative.toPlainText() == expected["negative_prompt"].strip()
    assert window.seed.value() == expected["seed"] % (MAX_SEED + 1) and window.seed_lock.isChecked()
    assert window.size_box.currentData() == (expected["width"], expected["height"])
    assert "Settings read from the pasted A1111 parameters." in window.warnings.text()
    assert expected["model_name"] in window.errors.text()  # not installed here: named, as for a dropped image


def test_paste_parameters_reads_a_comfyui_workflow_and_says_when_there_is_nothing_to_read(qtbot, idle_app):
    window = idle_app.window
    name = "sd-metadata/png/comfyui-hires.png"
    expected = EXPECTED[name]
    window.prompt.setPlainText("a lighthouse")
    QApplication.clipboard().setText("a red fox in the snow, watercolor")  # a prompt alone holds no settings
    window.paste_action.trigger()
    assert window.errors.text() == NOTHING_TO_PASTE
    assert window.prompt.toPlainText() == "a lighthouse"

    QApplication.clipboard().setText(metadata_chunks(CORPUS / name)["workflow"])  # as a saved workflow file holds it
    window.paste_action.trigger()
    assert window.prompt.toPlainText() == expected["prompt"].strip()
    assert window.seed.value() == expected["seed"] % (MAX_SEED + 1)
    assert "Settings read from the pasted COMFYUI parameters." in window.warnings.text()


def test_a_prompt_pasted_into_the_prompt_box_is_pasted(qtbot, idle_app):
    """Text without settings is the prompt's words, even when it looks like parameters in part."""
    window = idle_app.window
    window.prompt.setPlainText("")
    seed = window.seed.value()
    for text in ("a red fox, Steps: 20", "a castle\nNegative prompt: blurry"):
        QApplication.clipboard().setText(text)
        window.prompt.clear()
        window.prompt.setFocus()
        qtbot.keyClick(window.prompt, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        assert window.prompt.toPlainText() == text
    assert window.seed.value() == seed and "pasted" not in window.warnings.text()


def test_a_workflow_file_dropped_on_the_window_fills_the_controls(qtbot, idle_app, tmp_path):
    """ComfyUI's workflow saved as .json (and A1111's text as PowerShell saves it: UTF-16), dropped on the window,
    gives its settings as pasted text does; a text file without settings is named in the error banner."""
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = idle_app.window

    def drop(*paths: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))
        qtbot.wait(50)  # the drop is opened once the drag source is let go

    name = "sd-metadata/png/comfyui-hires.png"
    (tmp_path / "hires workflow.json").write_text(metadata_chunks(CORPUS / name)["workflow"], encoding="utf-8")
    (tmp_path / "notes.txt").write_text("a red fox, Steps: 20", encoding="utf-8")
    drop(tmp_path / "hires workflow.json", tmp_path / "notes.txt")
    assert window.prompt.toPlainText() == EXPECTED[name]["prompt"].strip()
    assert window.seed.value() == EXPECTED[name]["seed"] % (MAX_SEED + 1)
    assert "Settings read from hires workflow.json's COMFYUI parameters." in window.warnings.text()
    assert "the other text files dropped were left alone" in window.warnings.text()
    assert window.tabs.currentIndex() == 0  # not the Models tab: a .json is no model

    name = "sd-metadata/png/forge.png"
    (tmp_path / "forge.txt").write_bytes(metadata_chunks(CORPUS / name)["parameters"].encode("utf-16"))
    drop(tmp_path / "forge.txt")
    assert window.prompt.toPlainText() == EXPECTED[name]["prompt"].strip()
    assert window.negative.toPlainText() == EXPECTED[name]["negative_prompt"].strip()

    drop(tmp_path / "notes.txt")
    assert window.errors.text().startswith("notes.txt holds no generation settings")
    assert window.prompt.toPlainText() == EXPECTED[name]["prompt"].strip()


def test_paste_parameters_of_a_file_copied_in_a_file_manager_reads_its_settings(qtbot, idle_app, tmp_path):
    """A file manager's Copy puts the file's address on the clipboard: Paste parameters reads that image's settings
    (no question asked, as for a drop) or a workflow file's; an image without settings is named."""
    from PySide6.QtCore import QMimeData, QUrl

    window = idle_app.window

    def copy(path: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        mime.setText(str(path))  # as file managers give it too: a path is no parameters
        QApplication.clipboard().setMimeData(mime)

    name = "sd-metadata/png/forge.png"
    copy(CORPUS / name)
    window.paste_action.trigger()
    assert window.prompt.toPlainText() == EXPECTED[name]["prompt"].strip()
    assert window.seed.value() == EXPECTED[name]["seed"] % (MAX_SEED + 1)

    name = "sd-metadata/png/comfyui-hires.png"
    (tmp_path / "workflow.json").write_text(metadata_chunks(CORPUS / name)["workflow"], encoding="utf-8")
    copy(tmp_path / "workflow.json")
    window.paste_action.trigger()
    assert window.seed.value() == EXPECTED[name]["seed"] % (MAX_SEED + 1) and window.hires_scale.value() == 1.5
    assert "Settings read from workflow.json's COMFYUI parameters." in window.warnings.text()

    copy(CORPUS / "sd-metadata/png/gimp.png")
    window.paste_action.trigger()
    assert window.errors.text() == "gimp.png carries no generation settings."
