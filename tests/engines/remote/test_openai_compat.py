"""The remote engine against a real local HTTP server: streaming, reasoning, stats, cancel, and every failure
as one clear line that never shows the API key."""

from __future__ import annotations

import threading

import pytest

from tests.engines.remote.fake_server import (
    FakeServer,
    answer,
    chunk,
    closed_port_url,
    endless,
    silent,
    status,
    stream,
    usage_chunk,
)
from zhbench.engines.api import ReplyStream
from zhbench.engines.errors import GenerationError, RemoteError
from zhbench.engines.remote.openai_compat import RemoteParams, load_remote
from zhbench.engines.remote.server import ad_hoc_server, list_models
from zhbench.engines.types import StopReason, stats_summary

HISTORY = [{"role": "user", "content": "你好"}]
KEY = "sk-test-0123456789abcdef"


def engine(fake: FakeServer, **options):
    return load_remote(ad_hoc_server(fake.url, **options), "tiny-chat")


def failure_of(fake: FakeServer, **options) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        engine(fake, **options).reply(HISTORY, RemoteParams(greedy=True))
    return caught.value


def test_a_streamed_reply_arrives_piece_by_piece_with_the_servers_token_counts(fake_server):
    pieces: list[str] = []
    reply = engine(fake_server).reply(HISTORY, RemoteParams(greedy=True), on_text=pieces.append)
    assert pieces == ["你好", "，世界"]
    assert reply.text == "你好，世界"
    assert reply.stats.stop_reason is StopReason.EOS
    assert (reply.stats.prompt_tokens, reply.stats.new_tokens, reply.stats.estimated) == (7, 2, False)
    assert reply.stats.ttft_s is not None and reply.stats.ttft_s <= reply.stats.total_s
    assert "~" not in stats_summary(reply.stats.to_dict())


def test_the_model_id_the_server_reports_is_kept_with_the_reply(fake_server):
    # A hosted API resolves an alias to a dated version; the reply records what answered.
    fake_server.chat = stream(
        [chunk("好", model="tiny-chat-2026-11-30"), chunk(finish="stop", model="tiny-chat-2026-11-30"), "[DONE]"]
    )
    reply = engine(fake_server).reply(HISTORY, RemoteParams(greedy=True))
    assert reply.served_model == "tiny-chat-2026-11-30"


def test_what_is_sent_greedy_is_temperature_0_and_the_configs_extra_fields_go_along(fake_server):
    extra = {"chat_template_kwargs": {"enable_thinking": False}}
    params = RemoteParams(greedy=True, seed=7, max_new_tokens=33, stop="。|！", system_prompt="简短回答")
    engine(fake_server, extra=extra).reply(HISTORY, params)
    sent = fake_server.requests[-1]
    assert sent["temperature"] == 0 and "top_p" not in sent
    assert (sent["seed"], sent["max_tokens"], sent["stop"]) == (7, 33, ["。", "！"])
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert sent["messages"][0] == {"role": "system", "content": "简短回答"}

    engine(fake_server).reply(HISTORY, RemoteParams(temperature=0.7, top_p=0.8))
    sampled = fake_server.requests[-1]
    assert (sampled["temperature"], sampled["top_p"]) == (0.7, 0.8)
    assert isinstance(sampled["seed"], int)  # drawn here, so the reply can be made again


@pytest.mark.parametrize("setting", ["top_k", "repetition_penalty", "num_beams"])
def test_settings_the_api_has_no_field_for_are_refused_and_not_offered(setting):
    with pytest.raises(ValueError, match=f"{setting} cannot be set"):
        RemoteParams().with_overrides({setting: 3}).validate()
    from zhbench.workbench.session.panes import editable_values

    assert setting not in editable_values(RemoteParams())
    assert "stop" in editable_values(RemoteParams())


def test_reasoning_streams_apart_from_the_answer_and_is_not_sent_back(fake_server):
    fake_server.chat = stream(
        [chunk(reasoning="想一想"), chunk(reasoning="……"), chunk("答案"), chunk(finish="stop"), "[DONE]"]
    )
    thinking: list[str] = []
    reply = engine(fake_server).reply(HISTORY, RemoteParams(), on_reasoning=thinking.append)
    assert "".join(thinking) == "想一想……" == reply.reasoning
    assert reply.text == reply.history_content == "答案"
    # no usage chunk: counted here, and marked so
    assert (reply.stats.new_tokens, reply.stats.reasoning_tokens, reply.stats.estimated) == (3, 2, True)
    assert stats_summary(reply.stats.to_dict()).startswith("~3 tokens (2 thinking) (estimated)")


def test_usage_reports_reasoning_tokens_and_length_maps_to_length(fake_server):
    fake_server.chat = stream(
        [chunk(reasoning="嗯"), chunk("好"), chunk(finish="length"), usage_chunk(5, 9, reasoning=6), "[DONE]"]
    )
    reply = engine(fake_server).reply(HISTORY, RemoteParams())
    assert reply.stats.stop_reason is StopReason.LENGTH
    assert (reply.stats.new_tokens, reply.stats.reasoning_tokens) == (9, 6)


def test_an_error_mid_stream_keeps_the_partial_reply_and_says_why(fake_server):
    fake_server.chat = stream([chunk("一半"), '{"error": {"message": "CUDA out of memory", "code": 500}}'])
    error = failure_of(fake_server)
    assert "the server stopped the reply: CUDA out of memory" in str(error)
    assert error.partial.text == "一半"
    assert error.partial.partial and error.partial.stats.stop_reason is StopReason.ERROR
    assert error.partial.error == str(error)


def test_cancel_closes_the_connection_and_the_server_sees_it(fake_server):
    fake_server.chat = endless(fake_server)
    model = engine(fake_server)
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            cancel.set()

    reply = model.reply(HISTORY, RemoteParams(), cancel=cancel, on_text=on_text)
    assert reply.stats.stop_reason is StopReason.CANCELLED
    assert reply.text == "字字字"  # stopped at the first chunk after the cancel
    assert fake_server.disconnected.wait(5), "the server never saw the client go"


def test_two_replies_at_once_stream_independently(fake_server):
    fake_server.chat = stream(answer("甲", "乙", "丙"), delay=0.02)
    model = engine(fake_server)
    streams = [ReplyStream(model, HISTORY, RemoteParams(greedy=True)).start() for _ in range(2)]
    assert ["".join(s) for s in streams] == ["甲乙丙", "甲乙丙"]


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}, "refused the API key (401"),
        (404, {"error": {"message": "The model `tiny-chat` does not exist."}}, "unknown model 'tiny-chat' (404"),
        (429, {"error": {"message": "Too many requests"}}, "rate limited (429: Too many requests); try again later"),
        (503, {"object": "error", "message": "engine is loading"}, "server error 503: engine is loading"),
        (500, "<html>\n<body>Internal Server Error</body></html>", "server error 500:"),
    ],
)
def test_refusals_are_one_line_without_the_key(fake_server, monkeypatch, code, body, expected):
    monkeypatch.setenv("ZH_TEST_KEY", KEY)
    fake_server.chat = status(code, body)
    error = failure_of(fake_server, api_key_env="ZH_TEST_KEY")
    message = str(error)
    assert expected in message
    assert "\n" not in message and KEY not in message
    assert fake_server.headers[-1]["Authorization"] == f"Bearer {KEY}"  # the key did go where it belongs


def test_a_malformed_line_is_one_clear_error(fake_server):
    fake_server.chat = stream([chunk("好"), "{not json", "[DONE]"])
    error = failure_of(fake_server)
    assert "a malformed line in the stream: '{not json'" in str(error)
    assert error.partial.text == "好"


def test_a_stream_cut_short_is_an_error_not_a_finished_reply(fake_server):
    fake_server.chat = stream([chunk("没")])
    assert "the stream ended before the reply did" in str(failure_of(fake_server))


def test_a_silent_server_times_out_with_one_line(fake_server):
    fake_server.chat = silent(3)
    message = str(failure_of(fake_server, timeout_s=0.3))
    assert "the server sent nothing for 0.3s (read timeout" in message


def test_an_unknown_model_is_refused_when_loading(fake_server):
    with pytest.raises(RemoteError, match=r"unknown model 'qwen' \(it serves: tiny-chat\)"):
        load_remote(ad_hoc_server(fake_server.url), "qwen")


def test_a_server_that_does_not_list_its_models_still_loads(fake_server):
    fake_server.models_status = 404
    assert engine(fake_server).reply(HISTORY, RemoteParams()).text == "你好，世界"


def test_a_wrong_key_is_refused_when_loading(fake_server, monkeypatch):
    monkeypatch.setenv("ZH_TEST_KEY", KEY)
    fake_server.models_status = 401
    with pytest.raises(RemoteError) as caught:
        engine(fake_server, api_key_env="ZH_TEST_KEY")
    assert "refused the API key" in str(caught.value) and "$ZH_TEST_KEY" in str(caught.value)


def test_a_missing_key_variable_is_named(fake_server, monkeypatch):
    monkeypatch.delenv("ZH_UNSET_KEY", raising=False)
    with pytest.raises(RemoteError, match=r"the environment variable ZH_UNSET_KEY .* is not set"):
        engine(fake_server, api_key_env="ZH_UNSET_KEY")


def test_a_key_given_in_place_of_its_variable_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as caught:
        ad_hoc_server("http://127.0.0.1:9/v1", api_key_env=KEY)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (closed_port_url(), "connection refused at http://127.0.0.1:"),
        ("http://zhbench-test.invalid/v1", "cannot resolve the host 'zhbench-test.invalid' (DNS failure)"),
    ],
)
def test_unreachable_servers_are_one_line(url, expected):
    for attempt in (lambda: list_models(ad_hoc_server(url)), lambda: load_remote(ad_hoc_server(url), "tiny-chat")):
        with pytest.raises(RemoteError) as caught:
            attempt()
        assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_credentials_in_the_url_are_used_but_never_shown(fake_server):
    url = fake_server.url.replace("http://", "http://user:hunter2-secret@")
    server = ad_hoc_server(url)
    assert server.public_url == fake_server.url
    model = load_remote(server, "tiny-chat")
    assert "hunter2" not in str(model.describe().to_dict())
    fake_server.chat = status(500, {"error": {"message": "bad auth hunter2-secret"}})
    with pytest.raises(GenerationError) as caught:
        model.reply(HISTORY, RemoteParams())
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_describe_names_the_server_without_credentials(fake_server, monkeypatch):
    monkeypatch.setenv("ZH_TEST_KEY", KEY)
    info = engine(fake_server, api_key_env="ZH_TEST_KEY").describe()
    assert info.family == "openai-compat" and info.path is None
    assert info.details["base_url"] == fake_server.url and info.details["server_model"] == "tiny-chat"
    assert info.placement() == "remote"
    assert KEY not in str(info.to_dict())


def test_a_pane_sends_what_its_config_or_preset_sets_and_says_server_defaults_otherwise(fake_server, tmp_path):
    from zhbench.workbench.session.bench import Bench
    from zhbench.workbench.session.panes import params_summary

    model = engine(fake_server)
    plain, _ = Bench(tmp_path).initial_params(model)
    assert params_summary(plain).startswith("server defaults")
    model.reply(HISTORY, plain)
    assert not {"temperature", "top_p", "max_tokens"} & set(fake_server.requests[-1])

    configured, problem = Bench(tmp_path, param_overrides={"openai-compat": {"temperature": 0.6}}).initial_params(model)
    assert problem is None and params_summary(configured).startswith("temp 0.6 · seed random")
    model.reply(HISTORY, configured)
    assert fake_server.requests[-1]["temperature"] == 0.6 and "top_p" not in fake_server.requests[-1]

    model.reply(HISTORY, model.presets()["greedy"])
    assert fake_server.requests[-1]["temperature"] == 0
    assert set(model.presets()) == {"server-defaults", "greedy"}
