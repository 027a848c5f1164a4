"""The prompt boxes as A1111's: they count their tokens ("2/75", a second window of 75 once past it, red past the
600 tokens that are read), and Ctrl+Up and Ctrl+Down weigh their words."""

from __future__ import annotations

SOON = 5000  # ms: a count waits for a pause in typing, then takes a millisecond


def test_the_prompt_boxes_count_their_tokens_as_the_engine_reads_them(qtbot, idle_app):
    window = idle_app.window
    window.steps.setValue(4)
    window.prompt.setPlainText("a red fox")
    qtbot.waitUntil(lambda: window.prompt_tokens.text() == "3/75", timeout=SOON)
    assert "red" not in window.prompt_tokens.styleSheet()
    long = "masterpiece, best quality, (a red fox:1.2) in the snow, " * 12  # 144 tokens: the weights are not words
    window.prompt.setPlainText(long + "<lora:fox:0.8>")
    qtbot.waitUntil(lambda: window.prompt_tokens.text() == "144/150", timeout=SOON)
    window.prompt.setPlainText(long * 5)
    qtbot.waitUntil(lambda: window.prompt_tokens.text() == "720/750", timeout=SOON)  # 10 windows: a phrase is not cut
    assert "c62828" in window.prompt_tokens.styleSheet() and "the rest is not read" in window.prompt_tokens.toolTip()
    window.prompt.setPlainText("fox, " * 10_000)  # a page pasted by mistake: counted so far
    qtbot.waitUntil(lambda: window.prompt_tokens.text().endswith("+"), timeout=SOON)
    assert window.prompt_tokens.counts[0] >= 8000
    window.prompt.setPlainText("a [fox:a very long and winding sentence:8] here")  # from step 8 of 4: never read
    qtbot.waitUntil(lambda: window.prompt_tokens.text() == "3/75", timeout=SOON)
    window.steps.setValue(1)
    window.steps.setValue(8)
    window.prompt.setPlainText("a [fox:a very long and winding sentence:2] here")
    qtbot.waitUntil(lambda: window.prompt_tokens.text() == "8/75", timeout=SOON)
    window.negative.setPlainText("blurry, lowres")
    qtbot.waitUntil(lambda: window.negative_tokens.text() == "4/75", timeout=SOON)
    draw = window.draw
    draw.prompt.setText("a house BREAK on a hill")
    qtbot.waitUntil(lambda: draw.prompt_tokens.text() == "5/150", timeout=SOON)


def test_ctrl_up_and_down_weigh_the_words_of_a_prompt_box(qtbot, idle_app):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextCursor
    from PySide6.QtTest import QTest

    from hypersd_desktop.ui.shortcuts import shortcut_rows, undescribed

    window = idle_app.window
    ctrl = Qt.KeyboardModifier.ControlModifier
    window.prompt.setPlainText("🦊 a red fox, in the snow")  # an emoji: two of Qt's positions
    window.prompt.setFocus()
    cursor = window.prompt.textCursor()
    cursor.setPosition(6)  # in "red"
    window.prompt.setTextCursor(cursor)
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, ctrl)
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, ctrl)
    assert window.prompt.toPlainText() == "🦊 a (red:1.2) fox, in the snow"
    assert window.prompt.textCursor().selectedText() == "red"
    QTest.keyClick(window.prompt, Qt.Key.Key_Down, ctrl)
    QTest.keyClick(window.prompt, Qt.Key.Key_Down, ctrl)
    assert window.prompt.toPlainText() == "🦊 a red fox, in the snow"  # at 1 the brackets go
    window.prompt.undo()
    assert window.prompt.toPlainText() == "🦊 a (red:1.1) fox, in the snow"  # one press, one undo
    cursor = window.prompt.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    window.prompt.setTextCursor(cursor)
    window.hires_prompt.setText("a castle <lora:fox:0.8>")
    window.hires_prompt.setCursorPosition(12)
    QTest.keyClick(window.hires_prompt, Qt.Key.Key_Down, ctrl)  # a line box too: a LoRA tag by 0.05
    assert window.hires_prompt.text() == "a castle <lora:fox:0.75>"
    window.draw.prompt.setText("a house")
    window.draw.prompt.setCursorPosition(0)
    QTest.keyClick(window.draw.prompt, Qt.Key.Key_Up, ctrl)
    assert window.draw.prompt.text() == "(a:1.1) house"
    rows = shortcut_rows(window)
    assert [(place, keys) for place, keys, what in rows if "Weigh" in what] == [
        ("Generate tab", "Ctrl+Up"), ("Generate tab", "Ctrl+Down"), ("Draw tab", "Ctrl+Up"), ("Draw tab", "Ctrl+Down")]
    assert undescribed(window) == []


def test_alt_up_and_down_step_through_the_prompts_made_before_and_history_lists_them(qtbot, idle_app):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from hypersd_desktop.app import build_app
    from hypersd_desktop.ui.shortcuts import shortcut_rows
    from tests.ui.conftest import close

    window = idle_app.window  # no worker: Generate queues, and remembers the prompt as typed
    for prompt in ("a red fox", "a castle & a moat", "a lighthouse", "a red fox"):
        window.prompt.setPlainText(prompt)
        assert window.generate(count=1)
    alt = Qt.KeyboardModifier.AltModifier
    window.prompt.setPlainText("a half-typed")
    window.prompt.setFocus()
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, alt)
    assert window.prompt.toPlainText() == "a red fox"  # the newest, once
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, alt)
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, alt)
    assert window.prompt.toPlainText() == "a castle & a moat"
    QTest.keyClick(window.prompt, Qt.Key.Key_Up, alt)
    assert window.prompt.toPlainText() == "a castle & a moat"  # the oldest stays
    for _ in range(3):
        QTest.keyClick(window.prompt, Qt.Key.Key_Down, alt)
    assert window.prompt.toPlainText() == "a half-typed"  # back to what was being typed
    window.history._fill()
    actions = window.history.menu.actions()
    assert [action.text() for action in actions] == ["a red fox", "a lighthouse", "a castle && a moat"]
    actions[2].trigger()
    assert window.prompt.toPlainText() == "a castle & a moat"
    window.prompt.undo()
    assert window.prompt.toPlainText() == "a half-typed"  # a choice is one undo step
    # the negative prompt box has its own, of the negative prompts the recipe read
    window.hyper_box.setCurrentIndex(0)  # a plain model, guided
    window.guidance.setValue(5.0)
    for negative in ("blur", "text, watermark", ""):
        window.negative.setPlainText(negative)
        assert window.generate(count=1)
    window.hyper_box.setCurrentIndex(1)  # a Hyper-SD LoRA without guidance: the box is not read
    assert not window.negative.isEnabled() and not window.negative_history.button.isEnabled()
    window.negative.setPlainText("unread")
    assert window.generate(count=1)
    assert window.history.prompts[0] == "a half-typed"
    assert window.negative_history.prompts == ["text, watermark", "blur"]
    window.hyper_box.setCurrentIndex(0)
    window.guidance.setValue(5.0)  # the LoRA's recipe set it to 0
    assert window.negative.isEnabled() and window.negative_history.button.isEnabled()
    window.negative.setFocus()
    QTest.keyClick(window.negative, Qt.Key.Key_Up, alt)
    assert window.negative.toPlainText() == "text, watermark" and window.prompt.toPlainText() == "a half-typed"
    QTest.keyClick(window.negative, Qt.Key.Key_Down, alt)
    assert window.negative.toPlainText() == "unread"
    window.negative_history._fill()
    assert [action.text() for action in window.negative_history.menu.actions()] == ["text, watermark", "blur"]
    rows = shortcut_rows(window)
    assert [what for _place, keys, what in rows if keys == "Alt+Up"] == [
        "The prompt made before (newest first)", "The negative prompt made before (newest first)"]
    window.close()
    again = build_app(["test"], start_worker=False)
    try:
        assert again.window.history.prompts == ["a half-typed", "a red fox", "a lighthouse", "a castle & a moat"]
        assert again.window.negative_history.prompts == ["text, watermark", "blur"]  # kept
    finally:
        close(again)


def test_a_damaged_vocabulary_leaves_the_counters_blank_and_says_why_in_the_log(qtbot, tmp_path, monkeypatch, caplog,
                                                                                request):
    from hypersd_desktop.core import clip_tokenizer
    from hypersd_desktop.ui import token_count

    folder = tmp_path / "configs" / "sd15" / "tokenizer"
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text('{"a</w>": 0, "b', encoding="utf-8")  # cut short, as by a failed copy
    monkeypatch.setattr(clip_tokenizer, "resources_dir", lambda: tmp_path)
    clip_tokenizer.clip_tokenizer.cache_clear()  # read once per process: the damaged copy is read here
    request.addfinalizer(clip_tokenizer.clip_tokenizer.cache_clear)
    vocabulary = token_count._Vocabulary()
    ready = []
    vocabulary.ready.connect(lambda: ready.append(True))
    with caplog.at_level("WARNING"):
        vocabulary._load()
    assert vocabulary.tokenizer is None and not ready
    assert "token counters are off" in caplog.text
    (folder / "vocab.json").unlink()  # missing altogether
    caplog.clear()
    with caplog.at_level("WARNING"):
        vocabulary._load()
    assert "vocab.json" in caplog.text


def test_an_installed_embedding_counts_as_its_vectors_once_installed(qtbot, idle_app, tmp_path):
    import torch
    from safetensors.torch import save_file

    from hypersd_desktop.core.clip_tokenizer import clip_tokenizer
    from hypersd_desktop.engine.prompts import counted

    window = idle_app.window
    window.steps.setValue(4)
    window.negative.setPlainText("lowres, BadHandV4, bad anatomy")
    words, _ = counted(clip_tokenizer(), "lowres, BadHandV4, bad anatomy")
    qtbot.waitUntil(lambda: window.negative_tokens.text() == f"{words}/75", timeout=SOON)  # not installed: words
    embedding = tmp_path / "badhandv4.safetensors"
    save_file({"emb_params": torch.zeros(6, 32)}, str(embedding))
    idle_app.library.import_path(embedding)
    window.reload_models()  # as an install does: the count follows without an edit
    plain, _ = counted(clip_tokenizer(), "lowres, , bad anatomy")
    qtbot.waitUntil(lambda: window.negative_tokens.text() == f"{plain + 6}/75", timeout=SOON)
    assert "badhandv4: 6 tokens, one for each vector of the embedding" in window.negative_tokens.toolTip()
    window.draw.prompt.setText("a hand, badhandv4 " * 10)
    qtbot.waitUntil(lambda: window.draw.prompt_tokens.text() == "90/150", timeout=SOON)  # 3 words and 6 vectors, ×10
    embedding.write_bytes(b"\x00" * 64)  # damaged since: its name counts as words, generating says what is wrong
    assert idle_app.library.embedding_vectors(window.current_model().path, "badhandv4") == {}


def test_a_count_waiting_for_a_pause_is_dropped_when_the_window_closes(qtbot, idle_app):
    """Typing, then quitting within the pause a count waits for: the count does not run against the model library,
    which closes with the window (it raised in Qt's event loop, in whatever ran next)."""
    window = idle_app.window
    window.negative.setPlainText("lowres, blurry")
    window.draw.prompt.setText("a house")
    window.close()
    idle_app.library.close()
    qtbot.wait(400)  # past the pause
    for count in (window.prompt_tokens, window.negative_tokens, window.draw.prompt_tokens):
        count.recount()  # as the timer would: nothing read (it raised "Cannot operate on a closed database")
    assert window.negative_tokens.text() == "0/75"
    window.negative.setPlainText("lowres")
    assert not window.negative_tokens._timer.isActive()
