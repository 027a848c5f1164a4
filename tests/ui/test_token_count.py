"""The prompt boxes count their tokens as A1111's do: "2/75", a second window of 75 once past it, red past the
600 tokens that are read."""

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
