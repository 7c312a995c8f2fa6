"""Every line and JSON document the CLI prints shows text zhbench did not write (ids, names, a server's
words) through one sanitiser: no raw ESC, BEL, C1 control or direction override reaches the terminal
(issue 26 §4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.remote.fake_server import FakeServer, answer, serve, stream
from zhbench.workbench.cli import main

#: what must never reach a terminal raw: ESC (an OSC title, a CSI), BEL, C1's CSI, a right-to-left override
RAW = ("\x1b", "\x07", "\x9b", "\u202e")
HOSTILE = "\x1b]0;pwned\x07\x9b2J\u202e"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_inert(*texts: str) -> None:
    for text in texts:
        assert not any(char in text for char in RAW), repr(text)


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer(chat=stream(answer(f"好{HOSTILE}的"))))


def test_models_lists_a_configured_servers_hostile_ids_inert(
    capsys: pytest.CaptureFixture[str], user_dirs: dict[str, Path]
) -> None:
    config = user_dirs["config"] / "zhbench" / "config.toml"
    config.parent.mkdir(parents=True)
    escaped = json.dumps(f"m{HOSTILE}")  # TOML's basic strings take JSON's escapes
    config.write_text(f'[servers.evil]\nbase_url = "http://127.0.0.1:9/v1"\nmodels = [{escaped}]\n', encoding="utf-8")
    code, out, err = run(capsys, "models")
    assert code == 0 and "evil/m\\x1b]0;pwned\\x07\\x9b2J\\u202e" in out
    code, listed, _ = run(capsys, "models", "--json")
    assert code == 0 and f"evil/m{HOSTILE}" in [row["id"] for row in json.loads(listed)]
    assert_inert(out, err, listed)


def test_an_error_line_naming_what_was_given_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ask", "--model", f"no-such{HOSTILE}", "你好")
    assert code == 1 and "no-such\\x1b]0;pwned" in err
    assert_inert(out, err)


def test_ask_json_escapes_what_the_server_answered(
    capsys: pytest.CaptureFixture[str], fake_server: FakeServer
) -> None:
    code, out, err = run(capsys, "ask", "--base-url", fake_server.url, "--model", "tiny-chat", "--json", "你好")
    assert code == 0, err
    assert json.loads(out)["reply"] == f"好{HOSTILE}的"  # the same data, written safe to show
    assert_inert(out, err)
