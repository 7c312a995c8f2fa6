"""The engine core's contract: stop reasons, streaming, cancellation, errors that never hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from zhbench.engines.errors import GenerationError, HistoryError
from zhbench.engines.local.token_engine import Generation, TokenEngine
from zhbench.engines.types import GenerationParams, Message, Prompt, Reply, StopReason

END = 0


class ScriptedGeneration(Generation):
    """Tokens from the engine's script; text and stop rule from the engine (so a test can swap them)."""

    def __init__(self, engine: ScriptedEngine, prompt: Prompt) -> None:
        super().__init__(prompt)
        self.engine = engine

    def tokens(self) -> Iterator[int]:
        for item in self.engine.script:
            time.sleep(self.engine.delay)
            if isinstance(item, Exception):
                raise item
            self.engine.produced += 1
            yield item

    def text(self, reply_ids: Sequence[int]) -> str:
        return self.engine.decode_reply(reply_ids)

    def stop_rule(self, text: str) -> str | None:
        return text[: text.index("\n\n")] if "\n\n" in text else None

    @property
    def fed_tokens(self) -> int:
        return self.engine.fed_token_count(self.prompt)


class ScriptedEngine(TokenEngine):
    """A core-contract fixture: tokens come from a script (ids are characters' code points, 0 ends).

    Model behaviour is tested on real stand-ins elsewhere; this checks what the base does with tokens.
    """

    family = "scripted"

    def __init__(self, script: Sequence[int | Exception], delay: float = 0.0) -> None:
        super().__init__(Path("."), "cpu", "float32")
        self.end_ids = frozenset({END})
        self.script = script
        self.delay = delay
        self.produced = 0

    def default_params(self) -> GenerationParams:
        return GenerationParams(max_new_tokens=50)

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        return Prompt(history[-1]["content"], [ord(c) for c in history[-1]["content"]])

    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Generation:
        return ScriptedGeneration(self, prompt)

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return "".join(map(chr, output_ids))

    def fed_token_count(self, prompt: Prompt) -> int:
        return len(prompt.input_ids)


HISTORY = [{"role": "user", "content": "hi"}]


def codes(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_eos_ends_the_reply_and_is_not_shown():
    reply = ScriptedEngine([*codes("你好"), END, *codes("never")]).reply(HISTORY)
    assert (reply.text, reply.stats.stop_reason, reply.stats.new_tokens) == ("你好", StopReason.EOS, 3)


def test_stop_rule_and_length():
    ruled = ScriptedEngine(codes("ab\n\ncd")).reply(HISTORY)
    assert (ruled.text, ruled.stats.stop_reason) == ("ab", StopReason.STOP_RULE)
    long = ScriptedEngine(codes("x" * 100)).reply(HISTORY, GenerationParams(max_new_tokens=7))
    assert (long.text, long.stats.stop_reason) == ("x" * 7, StopReason.LENGTH)
    ran_out = ScriptedEngine(codes("xy")).reply(HISTORY)
    assert ran_out.stats.stop_reason is StopReason.LENGTH


def test_pieces_stream_in_order_and_wait_for_whole_characters():
    pieces: list[str] = []
    script = [*codes("ab"), 0xFFFD, *codes("c"), END]  # a half-decoded character shows as U+FFFD
    engine = ScriptedEngine(script)
    engine.decode_reply = lambda ids: "".join(map(chr, ids)).replace("\ufffdc", "字")  # type: ignore[method-assign]
    reply = engine.reply(HISTORY, on_text=pieces.append)
    assert pieces == ["a", "b", "字"]
    assert reply.text == "ab字"


def test_stats_are_reported():
    reply = ScriptedEngine([*codes("abc"), END], delay=0.01).reply(HISTORY)
    stats = reply.stats
    assert stats.prompt_tokens == 2 and stats.new_tokens == 4
    assert 0 < stats.ttft_s <= stats.total_s
    assert stats.tokens_per_s == pytest.approx(4 / stats.total_s)


def test_stats_count_the_tokens_a_family_says_it_fed():
    engine = ScriptedEngine([*codes("ok"), END])
    assert engine.chat_commands() == {}
    engine.fed_token_count = lambda prompt: len(prompt.input_ids) - 1  # type: ignore[method-assign]
    assert engine.reply([{"role": "user", "content": "hello"}]).stats.prompt_tokens == 4


def test_cancel_stops_within_one_token():
    engine = ScriptedEngine(codes("x" * 1000), delay=0.002)
    stream = engine.start_reply(HISTORY, GenerationParams(max_new_tokens=1000))
    seen = ""
    produced_at_cancel = None
    for piece in stream:  # pieces come in batches: the reply runs ahead of what the caller has seen
        seen += piece
        if len(seen) >= 5 and produced_at_cancel is None:
            stream.cancel()
            produced_at_cancel = engine.produced
    reply = stream.result
    assert reply.stats.stop_reason is StopReason.CANCELLED
    assert reply.partial
    assert produced_at_cancel is not None and engine.produced <= produced_at_cancel + 1
    assert reply.text == "x" * len(reply.text) and len(reply.text) >= 5 and reply.text.startswith(seen)


def test_an_error_mid_reply_reaches_the_caller_with_the_partial_reply():
    stream = ScriptedEngine([*codes("半句"), RuntimeError("CUDA out of memory")]).start_reply(HISTORY, None)
    pieces = []
    with pytest.raises(GenerationError, match="CUDA out of memory") as caught:
        for piece in stream:
            pieces.append(piece)
    partial = caught.value.partial
    assert "".join(pieces) == partial.text == "半句"
    assert partial.stats.stop_reason is StopReason.ERROR and partial.partial


def test_an_error_after_the_reply_keeps_the_whole_reply():
    class FailsAfterwards(ScriptedEngine):
        def generation_finished(self, generation: Generation, reply: Reply) -> None:
            raise RuntimeError("CUDA out of memory")  # RWKV saves its state here by running the model

    with pytest.raises(GenerationError, match=r"failed after the reply.*CUDA out of memory") as caught:
        FailsAfterwards([*codes("整句"), 0]).reply(HISTORY)
    assert caught.value.partial.text == "整句" and caught.value.partial.stats.stop_reason is StopReason.EOS


def test_an_error_while_building_the_prompt_does_not_hang():
    engine = ScriptedEngine([])
    engine.build_prompt = lambda history, params: 1 / 0  # type: ignore[method-assign,assignment,return-value]
    stream = engine.start_reply(HISTORY, None)
    with pytest.raises(GenerationError, match="ZeroDivisionError"):
        stream.wait()


@pytest.mark.parametrize(
    "history, message",
    [
        ("hello", "a list"),
        ([{"role": "bot", "content": "x"}], "role 'bot'"),
        ([{"role": "user"}], "no text"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message"),
        ([], "last message"),
    ],
)
def test_malformed_histories_are_refused_clearly(history, message):
    with pytest.raises(HistoryError, match=message):
        ScriptedEngine([]).reply(history)


def test_out_of_range_params_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        ScriptedEngine([]).reply(HISTORY, GenerationParams(temperature=0))
    with pytest.raises(ValueError, match="top_p"):
        ScriptedEngine([]).reply(HISTORY, GenerationParams(top_p=1.5))


def test_cancel_a_real_model_within_one_token(engine_for):
    engine = engine_for("chatyuan")
    stream = engine.start_reply(HISTORY, engine.default_params().with_overrides({"max_new_tokens": 512, "seed": 1}))
    for _ in stream:
        stream.cancel()
    reply = stream.result
    assert reply.stats.stop_reason is StopReason.CANCELLED
    assert reply.stats.new_tokens <= 3
