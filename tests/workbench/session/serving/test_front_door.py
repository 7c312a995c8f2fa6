"""``zhbench serve``'s front door against hostile requests: only this machine's names and JSON bodies get in,
bodies are capped, and what no tokenizer or sampler can take is a 400 naming the field, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.workbench.session.serving.conftest import RunningServer
from zhbench.workbench.session.serving.app import MAX_REQUEST_BYTES
from zhbench.workbench.session.serving.replies import StopCutter
from zhbench.workbench.session.serving.requests import MAX_STOP_CHARS

ServeModels = Callable[..., RunningServer]
GPT2 = "tiny-gpt2-dialogbot"
ASK = {"model": GPT2, "messages": [{"role": "user", "content": "你好"}], "max_tokens": 2, "temperature": 0}


@pytest.fixture
def server(serve_models: ServeModels, engine_for: Callable[[str], Any]) -> RunningServer:
    return serve_models({GPT2: engine_for("gpt2-dialogbot")})


def post(server: RunningServer, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    headers = {"Content-Type": "application/json", **headers}
    return httpx.post(f"{server.url}/chat/completions", content=content, headers=headers, timeout=30)


def test_a_page_on_another_name_dns_rebinding_is_refused_and_this_machines_names_are_not(server):
    port = server.url.split(":")[2].split("/")[0]
    body = json.dumps(ASK).encode()
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "localhost.evil.example"):
        assert post(server, body, Host=host).status_code == 400, host
        assert httpx.get(f"{server.url}/models", headers={"Host": host}).status_code == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "LOCALHOST"):
        assert post(server, body, Host=host).status_code == 200, host


def test_a_refused_host_is_openai_s_error_object(server: RunningServer) -> None:
    """A newcomer's client behind a proxy that rewrote Host got a plain-text "Invalid host header", which the
    OpenAI clients cannot read: it is OpenAI's error object, as serve's other refusals are."""
    refused = {
        "message": "the Host header 'evil.example' is not a name this server answers to (zhbench serve "
        "--allow-host NAME adds one)",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_host",
    }
    for answer in (
        post(server, json.dumps(ASK).encode(), Host="evil.example"),
        httpx.get(f"{server.url}/models", headers={"Host": "evil.example"}),
    ):
        assert (answer.status_code, answer.headers["content-type"]) == (400, "application/json")
        assert answer.json() == {"error": refused}


def test_allowed_hosts_widen_the_door(serve_models: ServeModels, engine_for: Callable[[str], Any]) -> None:
    server = serve_models({GPT2: engine_for("gpt2-dialogbot")}, allowed_hosts=["gpu-box.lan"])
    assert post(server, json.dumps(ASK).encode(), Host="gpu-box.lan").status_code == 200
    assert post(server, json.dumps(ASK).encode(), Host="evil.example").status_code == 400


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_a_body_that_is_not_declared_json_is_refused(server, content_type):
    # text/plain and forms are what a web page may post anywhere without asking (a CORS "simple request")
    response = post(server, json.dumps(ASK).encode(), **{"Content-Type": content_type})
    assert response.status_code == 415 and "Content-Type: application/json" in response.json()["error"]["message"]
    assert post(server, json.dumps(ASK).encode(), **{"Content-Type": "application/json; charset=utf-8"}).is_success


def test_a_body_past_the_cap_is_refused_with_413_declared_or_streamed(server):
    huge = json.dumps({**ASK, "messages": [{"role": "user", "content": "字" * MAX_REQUEST_BYTES}]}).encode()
    assert post(server, huge).status_code == 413
    pieces = (huge[start : start + 65536] for start in range(0, len(huge), 65536))  # chunked: no length given
    response = post(server, pieces)
    assert response.status_code == 413 and "larger than 4 MiB" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"model": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", "not valid JSON"),
        (json.dumps({**ASK, "temperature": 1e-300}).encode(), '"temperature" must be between 0 and 2'),
        (json.dumps({**ASK, "temperature": 0.001}).encode(), "from 0.01 up"),
        (json.dumps({**ASK, "messages": [{"role": "user", "content": "a\ud800b"}]}).encode(), "lone UTF-16 surrogate"),
        (json.dumps({**ASK, "stop": ["\udfff"]}).encode(), "lone UTF-16 surrogate"),
        (json.dumps({**ASK, "stop": "停" * (MAX_STOP_CHARS + 1)}).encode(), f"at most {MAX_STOP_CHARS} characters"),
        (json.dumps({**ASK, "stop": [str(n) for n in range(17)]}).encode(), "at most 16 strings"),
    ],
    ids=[
        "deep-list",
        "deep-object",
        "temperature-1e-300",
        "temperature-0.001",
        "surrogate",
        "surrogate-stop",
        "long-stop",
        "many-stops",
    ],
)
def test_what_no_tokenizer_or_sampler_can_take_is_a_400_naming_it(server, body, complaint):
    response = post(server, body)
    assert response.status_code == 400, response.text
    assert complaint in response.json()["error"]["message"]


def test_stop_strings_are_found_across_pieces_only_where_they_newly_end() -> None:
    stop = "<|im_end|>"
    cutter = StopCutter(["。。", stop])
    sent = [cutter.feed(piece) for piece in ["一二三<|im", "_e", "x|>四", "。", "<|im_", "end", "|>后"]]
    assert sent[0] == "一二三" and sent[3] == ""  # what may start a stop string is held back
    assert "".join(sent) == cutter.text == "一二三<|im_ex|>四。" and cutter.hit
    long_stop = "停" * MAX_STOP_CHARS
    cutter = StopCutter([long_stop])
    out = "".join(cutter.feed(piece) for piece in ["甲", *(["停"] * (MAX_STOP_CHARS - 1)), "乙"])
    out += "".join(cutter.feed(piece) for piece in ["丙", *(["停"] * MAX_STOP_CHARS), "丁"])
    assert out == "甲" + "停" * (MAX_STOP_CHARS - 1) + "乙丙" and cutter.hit


class Inspected:
    """A served engine that records the longest message it was asked to build a prompt of."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.family = engine.family
        self.longest = 0

    def describe(self) -> Any:
        return self.engine.describe()

    def presets(self) -> Any:
        return self.engine.presets()

    def chat_commands(self) -> dict[str, str]:
        return {}

    def prompt_for(self, history: Any, params: Any = None) -> Any:
        self.longest = max([self.longest, *(len(message["content"]) for message in history)])
        return self.engine.prompt_for(history, params)

    def reply(self, history: Any, params: Any = None, **channels: Any) -> Any:
        return self.engine.reply(history, params, **channels)


def test_a_last_message_longer_than_the_context_is_a_400_and_a_huge_one_is_never_tokenised(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    engine = Inspected(engine_for("chat-template"))
    server = serve_models({"tiny": engine})
    window = engine.engine.prompt_for([{"role": "user", "content": "?"}]).fit.window
    for content in ("字" * window * 3, "a" * 2**20):  # within the length that is tokenised, and far past it
        body = {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": 2}
        for stream in (False, True):
            response = post(server, json.dumps({**body, "stream": stream}).encode())
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "context_length_exceeded" and f"context of {window} tokens" in error["message"]
    assert engine.longest < 2**20  # the huge one was refused by its length alone
    assert server.replies == []  # nothing was generated


def test_a_conversation_of_thousands_of_turns_keeps_its_newest_turns_and_is_answered(
    serve_models: ServeModels, engine_for: Callable[[str], Any]
) -> None:
    server = serve_models({"tiny": engine_for("chat-template")})
    turns = [{"role": ("user", "assistant")[i % 2], "content": f"第{i}句" * 40} for i in range(2001)]
    body = {"model": "tiny", "messages": turns, "max_tokens": 2, "temperature": 0}
    response = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)  # it was minutes
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] < 2001 * 40


def test_a_client_that_hangs_up_mid_body_is_let_go_without_a_traceback(server, caplog):
    import logging
    import socket
    import time

    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's own logger does not pass records to the root
    uvicorn_log.addHandler(caplog.handler)
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"mo"
            )
    time.sleep(0.5)  # the server notices each hang-up
    uvicorn_log.removeHandler(caplog.handler)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    assert post(server, json.dumps(ASK).encode()).status_code == 200  # and goes on serving
