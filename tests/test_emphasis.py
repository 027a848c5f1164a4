"""Ctrl+Up and Ctrl+Down's edits of a prompt, as A1111's prompt boxes make them."""

from __future__ import annotations

import pytest

from hypersd_desktop.core.emphasis import nudged


@pytest.mark.parametrize(("text", "selected", "up", "edited", "weighed"), [
    ("a red fox, snow", (3, 3), True, "a (red:1.1) fox, snow", "red"),  # the word at the cursor
    ("a red fox, snow", (2, 9), True, "a (red fox:1.1), snow", "red fox"),
    ("a red fox, snow", (9, 2), False, "a (red fox:0.9), snow", "red fox"),  # selected from the right
    ("a red fox ", (2, 10), True, "a (red fox:1.1) ", "red fox"),  # the space after them stays outside
    ("a (red fox:1.2), snow", (5, 5), True, "a (red fox:1.3), snow", "red fox"),  # the group at the cursor
    ("a (red fox:1.2), snow", (3, 10), False, "a (red fox:1.1), snow", "red fox"),
    ("a (red fox:1.1), snow", (5, 5), False, "a red fox, snow", "red fox"),  # at 1 the brackets go
    ("(cat:0.9)", (2, 2), True, "cat", "cat"),
    ("(a (b:1.2) c:1.1)", (5, 5), True, "(a (b:1.3) c:1.1)", "b"),  # the innermost group
    ("(a (b:1.2) c:1.1)", (12, 12), True, "(a (b:1.2) c:1.2)", "a (b:1.2) c"),
    ("a <lora:fox:0.8> snow", (6, 6), True, "a <lora:fox:0.85> snow", "lora:fox:0.85"),  # a LoRA tag by 0.05
    ("a <lora:fox:0.8> snow", (2, 16), False, "a <lora:fox:0.75> snow", "lora:fox:0.75"),
    ("cat, (dog) BREAK", (8, 8), True, "cat, ((dog:1.1)) BREAK", "dog"),  # a group without weight: its word
    ("photo: a cat", (3, 3), True, "(photo:1.1): a cat", "photo"),
])
def test_a_press_weighs_the_words(text, selected, up, edited, weighed):
    nudge = nudged(text, *selected, up)
    assert (nudge.text, nudge.text[nudge.start:nudge.end]) == (edited, weighed)


def test_a_press_with_nothing_to_weigh_changes_nothing():
    assert nudged("", 0, 0, True) is None and nudged("a, , b", 3, 3, True) is None and nudged("a  ", 2, 3, True) is None
    again = nudged("a red fox", 3, 3, True)
    for _ in range(3):  # pressing on, the selection kept
        again = nudged(again.text, again.start, again.end, True)
    assert again.text == "a (red:1.4) fox"
