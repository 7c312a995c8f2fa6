"""The engine API: the one streaming mechanism, and an engine with no weights, ids or device satisfying it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from zhbench.engines.api import (
    ChatEngine,
    EngineInfo,
    PieceBatcher,
    PromptInspecting,
    ReplyStream,
    TextCallback,
    default_params,
)
from zhbench.engines.errors import GenerationError
from zhbench.engines.types import GenerationParams, Message, Reply, ReplyStats, StopReason


class EchoServer:
    """What a model behind a server is to zhbench: text in, text out, stats; no ids, no device, no path."""

    family = "echo-server"

    def __init__(self, chunk_delay: float = 0.0, fail_after: int | None = None) -> None:
        self.chunk_delay = chunk_delay
        self.fail_after = fail_after
        self.chunks_sent = 0

    def describe(self) -> EngineInfo:
        return EngineInfo(family=self.family, path=None, details={"server": "http://127.0.0.1:1"})

    def presets(self) -> dict[str, GenerationParams]:
        return {"default": GenerationParams(max_new_tokens=64), "short": GenerationParams(max_new_tokens=3)}

    def chat_commands(self) -> dict[str, str]:
        return {}

    def reply(
        self,
        history: Sequence[Message],
        params: GenerationParams | None = None,
        *,
        cancel: threading.Event | None = None,
        on_text: TextCallback | None = None,
        on_reasoning: TextCallback | None = None,
    ) -> Reply:
        params = params or default_params(self)
        started = time.perf_counter()
        text = ""
        stop = StopReason.EOS
        for index, chunk in enumerate(history[-1]["content"][::-1][: params.max_new_tokens]):
            if cancel is not None and cancel.is_set():
                stop = StopReason.CANCELLED
                break
            if self.fail_after is not None and index == self.fail_after:
                stats = ReplyStats(0, index, None, 0.0, 0.0, StopReason.ERROR)
                raise GenerationError("the server closed the stream", Reply(self.family, text, params, stats))
            time.sleep(self.chunk_delay)
            text += chunk
            self.chunks_sent += 1
            if on_text is not None:
                on_text(chunk)
        total = time.perf_counter() - started
        stats = ReplyStats(0, len(text), None, len(text) / total, total, stop)
        return Reply(self.family, text, params, stats)


HISTORY: list[Message] = [{"role": "user", "content": "你好，世界"}]


def test_an_engine_without_weights_satisfies_the_protocol_and_streams() -> None:
    engine: ChatEngine = EchoServer()
    assert not isinstance(engine, PromptInspecting)  # it has no prompt ids to show
    assert default_params(engine).max_new_tokens == 64
    assert engine.describe().placement() == "remote"
    pieces = list(stream := ReplyStream(engine, HISTORY).start())
    assert "".join(pieces) == stream.result.text == "界世，好你"
    assert stream.result.output_ids == []


def test_run_in_the_callers_thread_hands_on_batches_and_the_last_one_before_returning() -> None:
    batches: list[str] = []
    reply = ReplyStream(EchoServer(), HISTORY, on_text=batches.append, interval=3600).run()
    assert batches == ["界", "世，好你"]  # the first at once, the rest held until the end
    assert reply.text == "".join(batches)


def test_cancel_stops_a_server_reply_within_one_chunk() -> None:
    engine = EchoServer(chunk_delay=0.01)
    stream = ReplyStream(engine, [{"role": "user", "content": "长" * 500}], GenerationParams(max_new_tokens=500))
    for _ in stream.start():
        stream.cancel()
        sent_at_cancel = engine.chunks_sent
    assert stream.result.stats.stop_reason is StopReason.CANCELLED
    assert engine.chunks_sent <= sent_at_cancel + 1


def test_a_failure_mid_reply_reaches_the_caller_with_what_came() -> None:
    stream = ReplyStream(EchoServer(fail_after=2), HISTORY).start()
    seen = ""
    with pytest.raises(GenerationError, match="closed the stream") as caught:
        for piece in stream:
            seen += piece
    assert caught.value.partial.text == seen == "界世"


def test_a_stream_must_start_before_it_is_iterated() -> None:
    with pytest.raises(RuntimeError, match="start"):
        list(ReplyStream(EchoServer(), HISTORY))


def test_streamed_pieces_go_at_once_when_slow_and_in_batches_when_fast() -> None:
    sent: list[tuple[str, str]] = []
    batcher = PieceBatcher(lambda text, reasoning: sent.append((text, reasoning)), interval=0.05)
    batcher.add("慢")  # nothing sent lately: at once
    batcher.add("快")
    batcher.add_reasoning("想")
    batcher.add("快")
    assert sent == [("慢", "")]  # held: a batch left less than the interval ago
    time.sleep(0.06)
    batcher.add("！")
    assert sent == [("慢", ""), ("快快！", "想")]  # the answer's and the thinking's new text, in one batch
    batcher.add("尾")
    batcher.flush()  # the end of the reply sends what is held
    assert sent == [("慢", ""), ("快快！", "想"), ("尾", "")]
    batcher.flush()
    assert sent == [("慢", ""), ("快快！", "想"), ("尾", "")]
