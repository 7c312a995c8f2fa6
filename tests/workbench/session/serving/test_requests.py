"""A chat-completions request read into a history and settings, and stop strings applied to a stream."""

from __future__ import annotations

from typing import Any

import pytest

from zhbench.engines.families.chat_template.rules import ChatTemplateParams
from zhbench.engines.types import GenerationParams
from zhbench.workbench.session.serving.replies import StopCutter, cut_at_stop
from zhbench.workbench.session.serving.requests import BadRequest, read_chat_request

USER = [{"role": "user", "content": "你好"}]


def read(defaults: GenerationParams | None = None, **fields: Any) -> Any:
    return read_chat_request({"model": "m", "messages": USER, **fields}, defaults or GenerationParams(top_k=8))


def test_temperature_zero_is_greedy_and_other_settings_land_on_the_engine_defaults() -> None:
    request = read(temperature=0, top_p=0.5, max_tokens=7, seed=3, stop="。", stream=True,
                   stream_options={"include_usage": True})
    assert request.params.greedy is True
    assert (request.params.top_p, request.params.max_new_tokens, request.params.seed) == (0.5, 7, 3)
    assert request.params.top_k == 8  # the engine's default stays where the request says nothing
    assert (request.stop, request.stream, request.include_usage) == (("。",), True, True)
    sampled = read(GenerationParams(greedy=True), temperature=0.7, max_completion_tokens=5)
    assert (sampled.params.greedy, sampled.params.temperature, sampled.params.max_new_tokens) == (False, 0.7, 5)


def test_a_system_message_is_the_system_prompt_where_the_family_has_one_and_refused_elsewhere() -> None:
    parts = [{"type": "text", "text": "嗨"}]
    messages = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": parts}]
    request = read_chat_request({"model": "m", "messages": messages}, ChatTemplateParams())
    assert isinstance(request.params, ChatTemplateParams)
    assert request.params.system_prompt == "你是助手"
    assert request.history == [{"role": "user", "content": "嗨"}]
    with pytest.raises(BadRequest, match="no system prompt"):
        read_chat_request({"model": "m", "messages": messages}, GenerationParams())


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role 'tool'"),
        ({"messages": [{"role": "user", "content": 3}]}, "no text content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "only text"),
        ({"messages": [*USER, {"role": "assistant", "content": "x"}]}, "last message"),
        ({"messages": [*USER, {"role": "system", "content": "x"}]}, "before the conversation"),
        ({"temperature": 2.5}, "between 0 and 2"),
        ({"temperature": "hot"}, "must be a number"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_new_tokens"),
        ({"max_tokens": True}, "whole number"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"max_tokens": 2**20 + 1}, "max_new_tokens"),
        ({"stop": ["", "x"]}, "stop"),
        ({"n": 2}, '"n" is not supported'),
        ({"stream_options": {"include_usage": True}}, "goes with"),
        ({"chat_template_kwargs": {"enable_thinking": False}}, "enable_thinking"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_field(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(BadRequest, match=complaint):
        read(**fields)


def test_the_stream_holds_back_what_may_start_a_stop_string_and_sends_nothing_after_one() -> None:
    cutter = StopCutter(["<end>"])
    sent = [cutter.feed(piece) for piece in ("你好<", "e", "x", "，<en", "d>还有")]
    assert sent == ["你好", "", "<ex", "，", ""]
    assert cutter.hit and cutter.text == "你好<ex，"
    assert cutter.finish("你好<ex，<end>还有更多") == ""


def test_the_stream_sends_the_held_back_tail_and_the_final_text_s_unseen_end() -> None:
    cutter = StopCutter(["。。"])
    assert cutter.feed("好。") == "好"
    assert cutter.finish("好。了") == "。了"
    assert cut_at_stop("一。二。。三", ["。。", "二"]) == ("一。", True)
