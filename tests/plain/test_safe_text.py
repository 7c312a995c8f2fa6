"""Text from a model, a file or a person is shown literally: nothing in it can act or reorder what is read."""

from __future__ import annotations

from zhbench.plain.safe_text import json_text, visible_text
from zhbench.widgets.chat_pane import literal


def test_direction_overrides_are_shown_as_escapes_like_other_controls() -> None:
    """Issue 18, item 28: U+202E and friends were shown raw, and reorder the text around them."""
    tricky = "付款给\u202eTNUOCCA\u202c 和 \u2066隔离\u2069 \u200f标记"
    assert visible_text(tricky) == "付款给\\u202eTNUOCCA\\u202c 和 \\u2066隔离\\u2069 \\u200f标记"
    assert str(literal(tricky)) == visible_text(tricky)  # what a pane draws
    assert visible_text("中文，换行\n和\t制表符") == "中文，换行\n和\t制表符"  # ordinary text untouched


def test_json_keeps_chinese_readable_and_escapes_the_rest() -> None:
    assert json_text({"回复": "你好\u202e\x9b\u2028"}) == '{"回复": "你好\\u202e\\u009b\\u2028"}'
