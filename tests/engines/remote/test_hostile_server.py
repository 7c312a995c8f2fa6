"""The remote engine against a hostile or broken server on 127.0.0.1: the API key never comes back out of the
engine however the server echoes it, and every answer is bounded in time and memory."""

from __future__ import annotations

import itertools
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from tests.engines.remote.fake_server import FakeServer, answer, chunk, endless, raw, status, stream, usage_chunk
from zhbench.engines.errors import GenerationError, RemoteError
from zhbench.engines.remote.openai_compat import RemoteParams, load_remote
from zhbench.engines.remote.server import SECRET_PREFIX_CHARS, ad_hoc_server, blank_secrets, list_models
from zhbench.engines.types import StopReason

HISTORY = [{"role": "user", "content": "你好"}]
KEY = "sk-hostile-9f8e7d6c5b4a3210"
LEAKS = [KEY[:size] for size in range(SECRET_PREFIX_CHARS, len(KEY) + 1)]


def leaked(text: str) -> bool:
    return any(prefix in text for prefix in LEAKS)


@pytest.fixture
def keyed(fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("ZH_HOSTILE_KEY", KEY)
    return fake_server


def engine(fake: FakeServer, **options: object):  # type: ignore[no-untyped-def]
    return load_remote(ad_hoc_server(fake.url, api_key_env="ZH_HOSTILE_KEY", **options), "tiny-chat")


def failure(fake: FakeServer, params: RemoteParams | None = None, **options: object) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        engine(fake, **options).reply(HISTORY, params or RemoteParams(greedy=True))
    return caught.value


# --- secrets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [5, 10, len(KEY) - 3])
def test_a_key_straddling_the_cut_of_an_error_body_is_blanked_whole(keyed, cut):
    # the message is cut at 200 characters: the key's first `cut` characters end up right before the cut
    padding = "x" * (199 - cut)
    keyed.chat = status(401, {"error": {"message": f"{padding}{KEY} was refused"}})
    message = str(failure(keyed))
    assert "refused the API key (401" in message
    assert not leaked(message)


def test_a_key_echoed_in_a_malformed_stream_line_is_blanked(keyed):
    keyed.chat = stream([chunk("好"), f"{{oops {'y' * 40}{KEY}", "[DONE]"])
    error = failure(keyed)
    assert "a malformed line in the stream" in str(error) and not leaked(str(error))


def test_a_key_echoed_in_reply_text_thinking_and_model_id_never_leaves_the_engine(keyed):
    # the key is split across chunks in the answer, whole in the thinking and the model id
    pieces = ["你的钥匙是 ", KEY[:4], KEY[4:11], KEY[11:], " 对吧"]
    lines = [chunk(reasoning=f"他给了 {KEY}"), *(chunk(p, model=f"m-{KEY}") for p in pieces)]
    keyed.chat = stream([*lines, chunk(finish="stop", model=f"m-{KEY}"), "[DONE]"])
    shown: list[str] = []
    thought: list[str] = []
    reply = engine(keyed).reply(HISTORY, RemoteParams(), on_text=shown.append, on_reasoning=thought.append)
    for text in (reply.text, reply.reasoning, reply.served_model or "", "".join(shown), "".join(thought)):
        assert not leaked(text) and "***" in text
    assert reply.text == "".join(shown) == "你的钥匙是 *** 对吧"


def test_a_key_cut_off_at_the_end_of_the_reply_is_blanked(keyed):
    keyed.chat = stream([chunk("钥匙 "), chunk(KEY[:9]), chunk(finish="length"), "[DONE]"])
    reply = engine(keyed).reply(HISTORY, RemoteParams())
    assert reply.text == "钥匙 ***"


def test_text_that_only_looks_like_the_start_of_a_key_is_kept(keyed):
    keyed.chat = stream([chunk("sk-ho"), chunk("use"), chunk(finish="stop"), "[DONE]"])
    assert engine(keyed).reply(HISTORY, RemoteParams()).text == "sk-house"


def test_model_ids_a_listing_echoes_the_key_in_are_blanked(keyed):
    keyed.models = ["tiny-chat", f"{KEY}-model"]
    assert list_models(ad_hoc_server(keyed.url, api_key_env="ZH_HOSTILE_KEY")) == ["tiny-chat", "***-model"]


@pytest.mark.parametrize("bad", [f"{KEY}\n", f"sk-a\nb{KEY}", f"{KEY}\x1b[2J", f"{KEY}钥"])
def test_a_key_with_a_control_character_is_refused_without_printing_it(fake_server, monkeypatch, bad):
    monkeypatch.setenv("ZH_HOSTILE_KEY", bad)
    with pytest.raises(RemoteError) as caught:
        engine(fake_server)
    message = str(caught.value)
    assert "$ZH_HOSTILE_KEY holds a control or non-ASCII character" in message
    assert not leaked(message) and "sk-a" not in message
    assert fake_server.headers == []  # nothing was sent


def test_blank_secrets_blanks_every_start_of_six_or_more_characters_and_leaves_shorter_ones():
    assert blank_secrets(f"a {KEY[:6]} b {KEY[:5]} c {KEY}{KEY[:7]}", [KEY]) == f"a *** b {KEY[:5]} c ******"


# --- bounded in time and memory ----------------------------------------------------------------------


def test_a_server_that_ignores_max_tokens_is_cut_off_there(keyed):
    keyed.chat = endless(keyed)
    reply = engine(keyed).reply(HISTORY, RemoteParams(max_new_tokens=3))
    assert reply.text == "字字字" and reply.stats.stop_reason is StopReason.LENGTH
    assert keyed.disconnected.wait(5), "the connection was not closed"


def test_a_reply_that_trickles_past_the_deadline_stops_there(keyed):
    keyed.chat = endless(keyed, interval=0.2)  # well inside the read timeout, but never ends
    started = time.monotonic()
    error = failure(keyed, RemoteParams(max_new_tokens=10_000), deadline_s=1.0)
    assert "the reply took longer than 1s; stopped reading (the config's deadline_s)" in str(error)
    assert error.partial.text.startswith("字") and time.monotonic() - started < 5


def test_bytes_trickling_without_ever_ending_a_line_stop_at_the_deadline(keyed):
    keyed.chat = raw(200, {"Content-Type": "text/event-stream"}, itertools.repeat(b"d"), delay=0.05)
    started = time.monotonic()
    assert "took longer than 1s" in str(failure(keyed, deadline_s=1.0))
    assert time.monotonic() - started < 5


def test_a_listing_that_trickles_forever_stops_at_its_timeout(fake_server):
    fake_server.listing = raw(200, {"Content-Type": "application/json"}, itertools.repeat(b" "), delay=0.05)
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"GET /models took longer than 1s"):
        list_models(ad_hoc_server(fake_server.url), timeout_s=1.0)
    assert time.monotonic() - started < 5


def gzipped(byte: bytes, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``byte``, gzipped a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = byte * 2**20
    for _ in range(size // len(block)):
        yield packer.compress(block)
    yield packer.flush()


@pytest.mark.parametrize("where", ["reply", "listing", "error"])
def test_a_gzip_bomb_is_stopped_at_the_size_cap_without_inflating_it(keyed, where):
    # 200 MiB in about 200 KiB: of blank lines for the stream (so that no line is too long), else of spaces
    bomb = [b"".join(gzipped(b"\n" if where == "reply" else b" ", 200 * 2**20))]
    kind = "application/json" if where != "reply" else "text/event-stream"
    script = raw(200 if where != "error" else 500, {"Content-Type": kind, "Content-Encoding": "gzip"}, iter(bomb))
    tracemalloc.start()
    try:
        if where == "listing":
            keyed.listing = script
            with pytest.raises(RemoteError) as caught:
                list_models(ad_hoc_server(keyed.url), timeout_s=30)
            message = str(caught.value)
        else:
            keyed.chat = script
            message = str(failure(keyed))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = {"reply": "the reply is larger than", "listing": "GET /models is larger than", "error": "error 500"}
    assert expected[where] in message
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB held"


def test_a_gzipped_stream_from_an_honest_server_still_reads(keyed):
    body = "".join(f"data: {line}\n\n" for line in answer("压", "缩")).encode()
    keyed.chat = raw(
        200, {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}, iter([zlib.compress(body, wbits=31)])
    )
    assert engine(keyed).reply(HISTORY, RemoteParams()).text == "压缩"


def test_an_encoding_zhbench_did_not_ask_for_is_refused(keyed):
    keyed.chat = raw(200, {"Content-Type": "text/event-stream", "Content-Encoding": "br"}, iter([b"\x00" * 10]))
    assert "came compressed as 'br', which zhbench did not ask for" in str(failure(keyed))
    assert keyed.headers[-1]["Accept-Encoding"] == "gzip, deflate"


def test_one_endless_stream_line_is_cut_at_the_line_cap(keyed):
    keyed.chat = raw(
        200, {"Content-Type": "text/event-stream"}, itertools.chain([b"data: "], itertools.repeat(b"x" * 65536))
    )
    assert "a line of the stream is longer than 1024 KiB" in str(failure(keyed))


@pytest.mark.parametrize(
    "usage",
    [
        usage_chunk(-5, -714),
        usage_chunk(10**15, 10**15, reasoning=10**15),
        json.dumps({"choices": [], "usage": {"prompt_tokens": "7", "completion_tokens": True}}),
        usage_chunk(4, 2, reasoning=9),
    ],
)
def test_absurd_usage_numbers_are_not_believed(keyed, usage):
    keyed.chat = stream([chunk(reasoning="想"), chunk("好"), chunk("的"), chunk(finish="stop"), usage, "[DONE]"])
    stats = engine(keyed).reply(HISTORY, RemoteParams()).stats
    assert 0 <= stats.reasoning_tokens <= stats.new_tokens <= 3 and stats.prompt_tokens >= 0
    assert stats.tokens_per_s >= 0
