"""Typing a prompt offers the installed LoRAs after `<lora:` and the installed embeddings by their first letters."""

from __future__ import annotations

import json
import torch
from PySide6.QtCore import Qt
from safetensors.torch import save_file


def install(idle_app, hyper_lora, tmp_path) -> None:
    for name, weight in (("watercolour_wash", 0.65), ("pixel_art", None), ("ink_wash", None)):
        path = tmp_path / f"{name}.safetensors"
        data = hyper_lora("Hyper-SD15-2steps-lora").read_bytes()
        path.write_bytes(data[:-4] + name[:4].encode())  # a file of its own
        if weight:
            path.with_name(f"{name}.json").write_text(json.dumps({"preferred weight": weight}))
        idle_app.library.import_path(path)
    embedding = tmp_path / "EasyNegative.safetensors"
    save_file({"emb_params": torch.zeros(2, 32)}, str(embedding))
    idle_app.library.import_path(embedding)
    idle_app.window.reload_models()


def offered(completer) -> list[str]:
    popup = completer.completer.popup()
    return completer.completer.model().stringList() if popup.isVisible() else []


def test_a_lora_tag_is_completed_with_the_loras_weight(qtbot, idle_app, hyper_lora, tmp_path):
    install(idle_app, hyper_lora, tmp_path)
    window = idle_app.window
    completer = window.completers[0]
    window.prompt.setFocus()
    qtbot.keyClicks(window.prompt, "a harbour <lora:")
    qtbot.waitUntil(lambda: offered(completer) == ["ink_wash", "pixel_art", "watercolour_wash"], timeout=5000)
    qtbot.keyClicks(window.prompt, "WASH")  # any part of the name, in any case
    qtbot.waitUntil(lambda: offered(completer) == ["ink_wash", "watercolour_wash"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Down)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Return)
    assert window.prompt.toPlainText() == "a harbour <lora:watercolour_wash:0.65>"
    assert not completer.completer.popup().isVisible()
    assert [lora.weight for lora in window.build_request().loras if "watercolour" in lora.path] == [0.65]
    qtbot.keyClicks(window.prompt, ", <lora:pix")
    qtbot.waitUntil(lambda: offered(completer) == ["pixel_art"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Tab)
    assert window.prompt.toPlainText() == "a harbour <lora:watercolour_wash:0.65>, <lora:pixel_art:0.8>"
    qtbot.keyClicks(window.prompt, " <lora:INK")  # capitals typed with Shift keep the list
    qtbot.waitUntil(lambda: offered(completer) == ["ink_wash"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert not completer.completer.popup().isVisible()  # Ctrl+Enter is the window's (generate), not the list's
    assert window.prompt.toPlainText().endswith(" <lora:INK")


def test_an_embedding_is_offered_by_its_first_letters_and_escape_leaves_the_text(qtbot, idle_app, hyper_lora,
                                                                                   tmp_path):
    install(idle_app, hyper_lora, tmp_path)
    window = idle_app.window
    completer = window.completers[0]  # the negative prompt's works alike (it is enabled with guidance only)
    window.prompt.setFocus()
    qtbot.keyClicks(window.prompt, "a harbour, ea")
    assert offered(completer) == []  # two letters: too few
    qtbot.keyClicks(window.prompt, "s")
    qtbot.waitUntil(lambda: offered(completer) == ["EasyNegative"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Escape)
    assert window.prompt.toPlainText() == "a harbour, eas" and not completer.completer.popup().isVisible()
    qtbot.keyClicks(window.prompt, "y")
    qtbot.waitUntil(lambda: offered(completer) == ["EasyNegative"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Return)
    assert window.prompt.toPlainText() == "a harbour, EasyNegative"
    assert window.build_request().embeddings  # its name in the prompt applies it
    assert window.completers[1].embeddings == ["EasyNegative"]


def test_the_draw_tabs_prompt_completes_a_lora_tag_too(qtbot, idle_app, hyper_lora, tmp_path):
    install(idle_app, hyper_lora, tmp_path)
    window = idle_app.window
    window.tabs.setCurrentWidget(window.draw)
    window.draw.prompt.setFocus()
    qtbot.keyClicks(window.draw.prompt, "a boat <lora:pix")
    qtbot.waitUntil(lambda: offered(window.draw.completer) == ["pixel_art"], timeout=5000)
    qtbot.keyClick(window.draw.completer.completer.popup(), Qt.Key.Key_Return)
    assert window.draw.prompt.text() == "a boat <lora:pixel_art:0.8>"
    window.draw.prompt.undo()  # one step
    assert window.draw.prompt.text() == "a boat <lora:pix"


def test_a_wildcard_is_offered_after_two_underscores_and_written_whole(qtbot, idle_app):
    from hypersd_desktop.core.dynamic_prompts import ensure_wildcards

    folder = ensure_wildcards(idle_app.library.paths)  # with its sample, colors.txt
    (folder / "styles").mkdir()
    (folder / "styles" / "ink.txt").write_text("sumi-e\n", encoding="utf-8")
    (folder / "animals.txt").write_text("fox\n", encoding="utf-8")
    window = idle_app.window
    completer = window.completers[0]
    window.prompt.setFocus()
    qtbot.keyClicks(window.prompt, "a __")
    qtbot.waitUntil(lambda: offered(completer) == ["animals", "colors", "styles/ink"], timeout=5000)
    qtbot.keyClicks(window.prompt, "in")
    qtbot.waitUntil(lambda: offered(completer) == ["styles/ink"], timeout=5000)
    qtbot.keyClick(completer.completer.popup(), Qt.Key.Key_Return)
    assert window.prompt.toPlainText() == "a __styles/ink__"
    assert window.build_request().prompt == "a __styles/ink__"  # the request is the template; Generate chooses
