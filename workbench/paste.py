"""A bracketed paste arrives whole, whatever it holds.

Textual's terminal input parser (textual 8.2) reads an ESC inside a bracketed paste as the start of an
escape sequence: a pasted ``abc\\x1b[31mRED`` becomes the paste ``abc`` plus the keys ``^ [ 3 1 m R E D``,
delivered first, so the composer shows them scrambled, a pasted tab moves the focus, and an OSC-8 link
loses characters. This parser takes everything between the paste markers as the paste's text before
Textual's parser sees the rest, and is what the app's terminal driver uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from textual import constants, events
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.message import Message


class WholePasteParser(XTermParser):
    """Textual's parser, with a bracketed paste taken whole: one ``Paste`` event with its exact text."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self._pasted: list[str] | None = None  # the text of a paste underway
        self._held = ""  # what may be the start of a marker, cut off at the end of the last read
        self._held_since = 0.0

    def feed(self, data: str) -> Iterable[Message]:
        if not data and not self._held:
            return super().feed(data)  # the end of input
        data, self._held = self._held + data, ""
        tokens: list[Message] = []
        while data:
            marker = BRACKETED_PASTE_START if self._pasted is None else BRACKETED_PASTE_END
            at = data.find(marker)
            if at < 0:
                cut = len(data) - _marker_start_at_end(data, marker)
                data, self._held, self._held_since = data[:cut], data[cut:], time.monotonic()
                self._take(data, tokens)
                break
            self._take(data[:at], tokens)
            if self._pasted is None:
                self._pasted = []
            else:
                # NUL removed as Textual does (textual#1661)
                tokens.append(events.Paste("".join(self._pasted).replace("\x00", "")))
                self._pasted = None
            data = data[at + len(marker) :]
        return tokens

    def tick(self) -> Iterable[Message]:
        """Textual's timeouts; and what was held as a possible marker start, once no more came within the
        escape delay, goes on as what it was (the Escape key, Alt+[…)."""
        if self._held and self._pasted is None and time.monotonic() - self._held_since >= constants.ESCAPE_DELAY:
            held, self._held = self._held, ""
            yield from super().feed(held)
        yield from super().tick()

    def _take(self, text: str, tokens: list[Message]) -> None:
        """``text`` outside the markers: the paste's, or Textual's parser's to read."""
        if not text:
            return
        if self._pasted is not None:
            self._pasted.append(text)
        else:
            tokens.extend(super().feed(text))


def _marker_start_at_end(data: str, marker: str) -> int:
    """How many characters at the end of ``data`` begin ``marker`` (to wait for the rest of it)."""
    for length in range(min(len(marker) - 1, len(data)), 0, -1):
        if marker.startswith(data[-length:]):
            return length
    return 0


def use_whole_paste_parser() -> None:
    """Make the terminal drivers that read xterm input (Linux, macOS) parse it with ``WholePasteParser``."""
    from textual.drivers import linux_driver

    # through the module's namespace: textual does not export the name it imported (nor could a class be reassigned)
    vars(linux_driver)["XTermParser"] = WholePasteParser
