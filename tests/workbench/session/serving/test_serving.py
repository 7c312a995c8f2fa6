"""``zhbench serve``'s app on a real uvicorn server: the official ``openai`` client and zhbench's own remote
engine get what the engine gives locally; errors, the queue, cancellation and the key behave as documented."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest

from tests.workbench.session.serving.conftest import RunningServer
from zhbench.engines.api import EngineInfo, TextCallback, default_params
from zhbench.engines.remote.openai_compat import RemoteParams, load_remote
from zhbench.engines.remote.server import ad_hoc_server
from zhbench.engines.types import GenerationParams, Message, Reply, ReplyStats, StopReason

ServeModels = Callable[..., RunningServer]
GPT2, CHATYUAN, TEMPLATE = "tiny-gpt2-dialogbot", "tiny-chatyuan", "tiny-chat-template"
FAMILIES = {GPT2: "gpt2-dialogbot", CHATYUAN: "chatyuan", TEMPLATE: "chat-template"}


def ask(text: str) -> list[Message]:
    return [{"role": "user", "content": text}]


def local_greedy(engine: Any, history: list[Message], max_tokens: int, **settings: object) -> Reply:
    params = default_params(engine).with_overrides({"greedy": True, "max_new_tokens": max_tokens, **settings})
    return engine.reply(history, params)


def client(server: RunningServer, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture
def all_three(serve_models: ServeModels, engine_for: Callable[[str], Any]) -> RunningServer:
    return serve_models({ident: engine_for(family) for ident, family in FAMILIES.items()})


class OneAtATime:
    """An engine that records the most replies it was asked for at once (before the engine's own lock)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.family = engine.family
        self.active = self.most = 0
        self._count = threading.Lock()

    def describe(self) -> EngineInfo:
        return self.engine.describe()

    def presets(self) -> dict[str, GenerationParams]:
        return self.engine.presets()

    def chat_commands(self) -> dict[str, str]:
        return {}

    def reply(self, history: Sequence[Message], params: GenerationParams | None = None, **channels: Any) -> Reply:
        with self._count:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            return self.engine.reply(history, params, **channels)
        finally:
            with self._count:
                self.active -= 1


class ThinkingEngine:
    """A reasoning model in miniature: two pieces of thinking, then two of answer."""

    family = "thinking"

    def describe(self) -> EngineInfo:
        return EngineInfo(family=self.family, path=None)

    def presets(self) -> dict[str, GenerationParams]:
        return {"default": GenerationParams()}

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
        for piece in ("想", "一想"):
            assert on_reasoning is not None
            on_reasoning(piece)
        for piece in ("你好", "，世界"):
            assert on_text is not None
            on_text(piece)
        stats = ReplyStats(3, 6, 0.0, 1.0, 0.01, StopReason.EOS, reasoning_tokens=2)
        return Reply(self.family, "你好，世界", params or GenerationParams(), stats, reasoning="想一想")


# --- what comes back equals the local reply ----------------------------------------------------------


def test_models_are_listed_by_folder_name_and_a_greedy_reply_equals_the_local_one_for_each_family(
    all_three: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    api = client(all_three)
    assert [model.id for model in api.models.list()] == list(FAMILIES)
    for ident, family in FAMILIES.items():
        local = local_greedy(engine_for(family), ask("今天天气怎么样"), 6)
        completion = api.chat.completions.create(
            model=ident, messages=[{"role": "user", "content": "今天天气怎么样"}], temperature=0, max_tokens=6
        )
        assert completion.choices[0].message.content == local.text, family
        assert completion.choices[0].finish_reason == ("length" if local.stats.stop_reason == "length" else "stop")
        assert completion.model == ident
        assert completion.usage is not None
        prompt_tokens = len(local.prompt.input_ids)  # the whole prompt, though gpt2-dialogbot kept a prefix
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
            prompt_tokens,
            local.stats.new_tokens,
        )
        assert completion.usage.total_tokens == prompt_tokens + local.stats.new_tokens


def test_a_streamed_reply_is_the_local_reply_in_openai_chunks_with_usage_last(
    all_three: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    local = local_greedy(engine_for("chatyuan"), ask("写一首诗"), 8)
    stream = client(all_three).chat.completions.create(
        model=CHATYUAN,
        messages=[{"role": "user", "content": "写一首诗"}],
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == local.text
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == local.stats.new_tokens


def test_zhbench_s_own_remote_engine_gets_the_local_greedy_reply_streamed_and_the_system_prompt_applies(
    all_three: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    server = ad_hoc_server(all_three.url)
    for ident, family in FAMILIES.items():
        remote = load_remote(server, ident)
        pieces: list[str] = []
        reply = remote.reply(ask("你是谁"), RemoteParams(greedy=True, max_new_tokens=6), on_text=pieces.append)
        local = local_greedy(engine_for(family), ask("你是谁"), 6)
        assert reply.text == "".join(pieces) == local.text, family
        assert not reply.stats.estimated and reply.stats.new_tokens == local.stats.new_tokens
    with_system = load_remote(server, TEMPLATE).reply(
        ask("你是谁"), RemoteParams(greedy=True, max_new_tokens=6, system_prompt="你是一只猫")
    )
    local = local_greedy(engine_for("chat-template"), ask("你是谁"), 6, system_prompt="你是一只猫")
    assert with_system.text == local.text
    assert with_system.stats.prompt_tokens == len(local.prompt.input_ids)  # the system message was in the prompt


def test_a_stop_string_cuts_the_reply_and_finishes_it_with_stop(
    all_three: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    local = local_greedy(engine_for("gpt2-dialogbot"), ask("你好"), 12)
    stop = local.text[4:6]
    expected = local.text[: local.text.index(stop)]
    api = client(all_three)
    whole = api.chat.completions.create(
        model=GPT2, messages=[{"role": "user", "content": "你好"}], temperature=0, max_tokens=12, stop=[stop]
    )
    assert (whole.choices[0].message.content, whole.choices[0].finish_reason) == (expected, "stop")
    chunks = list(
        api.chat.completions.create(
            model=GPT2, messages=[{"role": "user", "content": "你好"}], temperature=0, max_tokens=12, stop=stop,
            stream=True,
        )
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all_three.wait_for_replies(2)[-1].reply.stats.new_tokens < 12  # generation stopped there too


def test_a_reasoning_model_s_thinking_goes_as_reasoning_content(serve_models: ServeModels) -> None:
    server = serve_models({"thinker": ThinkingEngine()})
    api = client(server)
    message = api.chat.completions.create(model="thinker", messages=[{"role": "user", "content": "?"}]).choices[0]
    assert message.message.content == "你好，世界"
    assert message.message.model_extra == {"reasoning_content": "想一想"}
    reply = load_remote(ad_hoc_server(server.url), "thinker").reply(ask("?"))
    assert (reply.reasoning, reply.text, reply.stats.reasoning_tokens) == ("想一想", "你好，世界", 2)


# --- errors --------------------------------------------------------------------------------------------


def post(server: RunningServer, body: object, **options: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **options.pop("headers", {})}
    return httpx.post(f"{server.url}/chat/completions", content=content, headers=headers, **{"timeout": 30, **options})


def test_each_refusal_has_its_status_and_openai_s_error_shape(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    server = serve_models({GPT2: engine_for("gpt2-dialogbot"), "still-loading": None})
    cases = [
        (b"{not json", 400, None),
        ({"model": GPT2, "messages": [{"role": "robot", "content": "x"}]}, 400, None),
        ({"model": GPT2, "messages": ask("x"), "top_p": 1.5}, 400, None),
        ({"model": GPT2, "messages": [{"role": "system", "content": "x"}, *ask("x")]}, 400, None),
        ({"model": "nobody", "messages": ask("x")}, 404, "model_not_found"),
        ({"model": "still-loading", "messages": ask("x")}, 503, "model_loading"),
    ]
    for body, status, code in cases:
        response = post(server, body)
        assert response.status_code == status, body
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert error["code"] == code
    assert httpx.get(f"{server.url}/nothing").json()["error"]["message"].endswith("Not Found")
    listed = httpx.get(f"{server.url}/models").json()["data"]
    assert [(model["id"], model["ready"]) for model in listed] == [(GPT2, True), ("still-loading", False)]
    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])


def test_without_the_bearer_key_every_request_gets_401_and_the_key_is_never_echoed(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    key = "sk-zhbench-test-key-123"
    server = serve_models({GPT2: engine_for("gpt2-dialogbot")}, api_key=key)
    body = {"model": GPT2, "messages": ask("你好"), "max_tokens": 2}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
        refused = post(server, body, headers=headers)
        assert refused.status_code == 401 and key not in refused.text
        assert httpx.get(f"{server.url}/models", headers=headers).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client(server, "wrong").models.list()
    assert client(server, key).chat.completions.create(
        model=GPT2, messages=[{"role": "user", "content": "你好"}], max_tokens=2
    ).choices[0].message.content is not None


# --- one at a time, the queue, and cancellation --------------------------------------------------------


def open_stream(server: RunningServer, model: str, max_tokens: int) -> tuple[httpx.Client, Iterator[str]]:
    """A streaming request whose first chunk of text has come, and its lines: keep them, since dropping them
    closes the connection; close the client to go away. (The chat-template stand-in's greedy reply to 你好
    runs to max_tokens: line breaks.)"""
    http = httpx.Client(timeout=60)
    body = {"model": model, "messages": ask("你好"), "temperature": 0, "max_tokens": max_tokens, "stream": True}
    response = http.send(http.build_request("POST", f"{server.url}/chat/completions", json=body), stream=True)
    assert response.status_code == 200
    lines = response.iter_lines()
    while '"content": ""' in (line := next(lines)) or not line:  # the role chunk, blank separators
        pass
    return http, lines


def wait_until(condition: Callable[[], bool], failure: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.01)


def test_concurrent_requests_are_answered_one_at_a_time_each_with_its_own_reply(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    engine = OneAtATime(engine_for("gpt2-dialogbot"))
    server = serve_models({GPT2: engine})
    prompts = ["你好", "早上好", "讲个笑话", "再见"]
    expected = {prompt: local_greedy(engine.engine, ask(prompt), 8).text for prompt in prompts}
    got: dict[str, str] = {}

    def ask_streaming(prompt: str) -> None:
        chunks = client(server).chat.completions.create(
            model=GPT2, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=8, stream=True
        )
        got[prompt] = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)

    threads = [threading.Thread(target=ask_streaming, args=(prompt,)) for prompt in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert got == expected
    assert engine.most == 1


def test_a_full_queue_refuses_with_429_and_a_client_that_leaves_cancels_within_a_token(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    server = serve_models({TEMPLATE: engine_for("chat-template")}, queue_limit=1)
    turns = server.served.models[TEMPLATE].turns
    first, _lines = open_stream(server, TEMPLATE, 3000)  # seconds of tokens on this stand-in
    waiting = threading.Thread(target=post, args=(server, {"model": TEMPLATE, "messages": ask("x"), "max_tokens": 2}))
    waiting.start()
    wait_until(lambda: turns.taken == 2, "the second request did not queue")
    refused = post(server, {"model": TEMPLATE, "messages": ask("x")})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "queue_full"
    assert refused.headers["retry-after"] == "1"
    with pytest.raises(openai.RateLimitError):
        client(server).chat.completions.create(model=TEMPLATE, messages=[{"role": "user", "content": "x"}])

    left_at = time.monotonic()
    first.close()  # the client goes away mid-reply
    stopped = server.wait_for_replies(1, timeout=10)[0]
    assert time.monotonic() - left_at < 3
    assert stopped.reply.stats.stop_reason is StopReason.CANCELLED and not stopped.delivered
    assert stopped.reply.stats.new_tokens < 3000
    waiting.join(timeout=10)  # the waiting request came next, at once
    assert not waiting.is_alive()
    started = time.monotonic()
    assert post(server, {"model": TEMPLATE, "messages": ask("x"), "max_tokens": 2}).status_code == 200
    assert time.monotonic() - started < 5
    # the turn is given back just after the last byte is sent, which the client may read first
    wait_until(lambda: turns.taken == 0, "the last request's turn was not given back")


def test_a_waiting_or_unstreamed_request_whose_client_leaves_is_cancelled_too(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    server = serve_models({TEMPLATE: engine_for("chat-template")})
    turns = server.served.models[TEMPLATE].turns
    first, _lines = open_stream(server, TEMPLATE, 3000)
    # A request that waits behind it, and gives up after half a second: it leaves the queue.
    with pytest.raises(httpx.ReadTimeout):
        post(server, {"model": TEMPLATE, "messages": ask("x")}, timeout=httpx.Timeout(30, read=0.5))
    wait_until(lambda: turns.taken == 1, "the request that left still waits")
    first.close()
    server.wait_for_replies(1)
    # A request without streaming whose client gives up mid-reply: its generation stops as well. Greedy on 你好,
    # which runs to max_tokens (a sampled reply with a drawn seed may end on its end token within the second).
    body = {"model": TEMPLATE, "messages": ask("你好"), "temperature": 0, "max_tokens": 3000}
    with pytest.raises(httpx.ReadTimeout):
        post(server, body, timeout=httpx.Timeout(30, read=1))
    stopped = server.wait_for_replies(2, timeout=10)[1]
    assert stopped.reply.stats.stop_reason is StopReason.CANCELLED and stopped.reply.stats.total_s < 5
