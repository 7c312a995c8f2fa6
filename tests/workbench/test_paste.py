"""A bracketed paste reaches the app whole, in order and literally, however the terminal's reads cut it."""

from __future__ import annotations

from textual import events

from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.paste import WholePasteParser

HOSTILE = "abc\x1b[31mRED\x1b[0m xyz\tq \x1b]8;;http://x.example\x1b\\link\x1b]8;;\x1b\\ 完\n第二行"
PASTE = f"\x1b[200~{HOSTILE}\x1b[201~"


def parse(*reads: str) -> list[object]:
    parser = WholePasteParser()
    return [token for read in reads for token in parser.feed(read)]


def test_a_paste_with_escapes_tabs_and_links_is_one_paste_of_exactly_its_text() -> None:
    tokens = parse("k" + PASTE + "m")
    assert [type(t).__name__ for t in tokens] == ["Key", "Paste", "Key"]
    assert tokens[1].text == HOSTILE
    assert (tokens[0].key, tokens[2].key) == ("k", "m")  # keys before and after keep their order


def test_a_paste_cut_anywhere_across_reads_is_the_same_paste() -> None:
    for cut in range(1, len(PASTE)):
        (paste,) = parse(PASTE[:cut], PASTE[cut:])
        assert isinstance(paste, events.Paste) and paste.text == HOSTILE, cut


def test_keys_and_escape_sequences_outside_a_paste_are_textuals() -> None:
    keys = [t.key for t in parse("a\x1b[A") if isinstance(t, events.Key)]
    assert keys == ["a", "up"]


def test_the_app_reads_the_terminal_with_it() -> None:
    from textual.drivers import linux_driver

    ZhbenchApp()
    assert linux_driver.XTermParser is WholePasteParser


def test_a_lone_escape_is_the_escape_key_once_nothing_follows(monkeypatch) -> None:
    parser = WholePasteParser()
    assert list(parser.feed("\x1b")) == []  # it may be the start of a paste: wait for the next read
    assert list(parser.tick()) == []  # not yet: within the escape delay
    clock = __import__("time").monotonic() + 1.0
    monkeypatch.setattr("zhbench.workbench.paste.time.monotonic", lambda: clock)
    tokens = list(parser.tick()) + list(parser.tick())
    monkeypatch.setattr("textual._parser.get_time", lambda: clock + 1.0)
    tokens += list(parser.tick())
    assert [t.key for t in tokens if isinstance(t, events.Key)] == ["escape"]
