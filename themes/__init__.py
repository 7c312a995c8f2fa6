"""zhbench's own themes (a dark and a light one) and the stylesheet that uses their colours."""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

#: the app's stylesheet; it styles through theme variables only, so every theme applies to it
STYLESHEET = Path(__file__).with_name("zhbench.tcss")

ZHBENCH_DARK = Theme(
    name="zhbench-dark",
    primary="#4FA3E0",
    secondary="#9D7CD8",
    accent="#E0AF68",
    foreground="#D8DEE9",
    background="#16181D",
    surface="#1E2128",
    panel="#262A33",
    success="#9ECE6A",
    warning="#E0AF68",
    error="#F7768E",
    dark=True,
    variables={"user-message": "#7DCFFF", "reply-stats": "#7A8294"},
)

ZHBENCH_LIGHT = Theme(
    name="zhbench-light",
    primary="#1F6FB2",
    secondary="#7048B6",
    accent="#B35C00",
    foreground="#1F2328",
    background="#FAFAF7",
    surface="#F0F0EA",
    panel="#E4E4DC",
    success="#2E7D32",
    warning="#9A6700",
    error="#C62828",
    dark=False,
    variables={"user-message": "#0B5394", "reply-stats": "#6A737D"},
)

#: values of our own variables under themes that do not define them
THEME_VARIABLE_DEFAULTS = {"user-message": "ansi_bright_cyan", "reply-stats": "ansi_bright_black"}

THEMES: tuple[Theme, ...] = (ZHBENCH_DARK, ZHBENCH_LIGHT)
