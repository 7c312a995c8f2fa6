"""``ask``, ``chat``, ``prompt`` and ``models`` with a model on a real local OpenAI-compatible server:
configured in ``[servers.NAME]`` or given by ``--base-url``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.engines.remote.fake_server import FakeServer, chunk, closed_port_url, serve, status, stream
from zhbench.workbench.cli import main

KEY = "sk-cli-secret-0123456789"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())


@pytest.fixture
def configured(fake_server, tmp_path, monkeypatch) -> FakeServer:
    """A config naming the fake server ``local`` (its key in ZH_CLI_KEY) and a server that is down."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("ZH_CLI_KEY", KEY)
    (tmp_path / "zhbench").mkdir()
    (tmp_path / "zhbench" / "config.toml").write_text(
        f"""
[servers.local]
base_url = "{fake_server.url}"
api_key_env = "ZH_CLI_KEY"
extra = {{ chat_template_kwargs = {{ enable_thinking = false }} }}

[servers.down]
base_url = "{closed_port_url()}"
""",
        encoding="utf-8",
    )
    return fake_server


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_greedy_ask_through_base_url_prints_the_streamed_text_and_the_stats(capsys, fake_server):
    code, out, err = run(capsys, "ask", "--base-url", fake_server.url, "--model", "tiny-chat", "--greedy", "你好")
    assert code == 0
    assert out == "你好，世界\n"
    assert "2 tokens · first after" in err and "tok/s · eos" in err
    assert fake_server.requests[-1]["temperature"] == 0


def test_a_configured_server_model_is_server_slash_model_and_sends_its_key_and_extra(capsys, configured):
    code, out, err = run(capsys, "ask", "--model", "local/tiny-chat", "--json", "--seed", "5", "你好")
    assert code == 0
    data = json.loads(out)
    assert (data["family"], data["reply"], data["params"]["seed"]) == ("openai-compat", "你好，世界", 5)
    assert data["served_model"] == "tiny-chat"
    assert configured.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert configured.requests[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert KEY not in out + err


def test_a_hub_id_whose_org_is_not_a_configured_server_stays_a_hub_id(capsys, configured):
    code, _, err = run(capsys, "ask", "--model", "Qwen/Qwen2-0.5B-Instruct", "你好")
    assert code == 1
    assert "Qwen/Qwen2-0.5B-Instruct: not a local path, and not in the local Hugging Face" in err


def test_models_lists_each_servers_models_and_says_which_cannot_be_reached(capsys, configured):
    started = time.monotonic()
    code, out, err = run(capsys, "models", "--json")
    assert time.monotonic() - started < 10
    assert code == 0
    served = [row for row in json.loads(out) if row["source"] == "server"]
    assert served == [
        {
            "id": "local/tiny-chat",
            "name": "tiny-chat",
            "family": "openai-compat",
            "path": None,
            "size_bytes": None,
            "source": "server",
            "base_url": configured.url,
        }
    ]
    assert "warning: server down cannot be reached: down: connection refused at http://127.0.0.1:" in err

    code, out, _ = run(capsys, "models")
    assert any(line.startswith("openai-compat") and "local/tiny-chat" in line for line in out.splitlines())


def test_prompt_shows_the_messages_a_server_model_is_sent(capsys, fake_server, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "user", "content": "你好"}]), encoding="utf-8")
    argv = ["prompt", "--base-url", fake_server.url, "--model", "tiny-chat", "--history", str(history)]
    code, out, _ = run(capsys, *argv, "--system", "简短", "--json")
    assert code == 0
    assert json.loads(out) == {
        "family": "openai-compat",
        "messages": [{"role": "system", "content": "简短"}, {"role": "user", "content": "你好"}],
    }


def test_chat_with_a_server_model(capsys, fake_server, monkeypatch):
    lines = iter(["你好"])

    def typed(_: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", typed)
    code, out, _ = run(capsys, "chat", "--base-url", fake_server.url, "--model", "tiny-chat")
    assert code == 0
    assert f"openai-compat · {fake_server.url} · remote" in out
    assert "你好，世界" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--top-k", "5"], "top_k cannot be set for this model: its API has no field for it"),
        (["--device", "cpu"], "local/tiny-chat runs on its server: device can be chosen only for a local model"),
        (["--api-key-env", "ZH_CLI_KEY"], None),
    ],
)
def test_local_only_options_are_refused_for_a_server_model(capsys, configured, argv, message):
    code, _, err = run(capsys, "ask", "--model", "local/tiny-chat", *argv, "你好")
    assert code == 1
    assert err.count("\n") == 1
    assert (message or "--api-key-env goes with --base-url") in err


def test_a_refusal_is_one_line_on_stderr_without_the_key(capsys, configured):
    configured.chat = status(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    code, out, err = run(capsys, "ask", "--model", "local/tiny-chat", "你好")
    assert code == 1
    assert err.startswith("zhbench: error: local: the server refused the API key (401: Incorrect API key provided: ***")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert KEY not in out + err


def test_an_error_mid_reply_keeps_the_text_marks_it_cut_off_and_says_why(capsys, fake_server):
    fake_server.chat = stream([chunk("一半"), '{"error": {"message": "worker died"}}'])
    code, out, err = run(capsys, "ask", "--base-url", fake_server.url, "--model", "tiny-chat", "你好")
    assert code == 1
    assert out == "一半 [cut off]\n"
    assert err == f"zhbench: error: {fake_server.url}: the server stopped the reply: worker died\n"


def test_an_unreachable_base_url_is_one_line(capsys):
    code, _, err = run(capsys, "ask", "--base-url", closed_port_url(), "--model", "m", "你好")
    assert code == 1
    assert "connection refused at http://127.0.0.1:" in err and err.count("\n") == 1


def test_only_the_sampling_settings_someone_set_are_sent_the_rest_is_the_servers(capsys, configured):
    sampling = {"temperature", "top_p", "max_tokens"}
    assert run(capsys, "ask", "--model", "local/tiny-chat", "你好")[0] == 0
    assert not sampling & set(configured.requests[-1])  # nothing set: the server's own defaults apply
    argv = ["ask", "--model", "local/tiny-chat", "--set", "top_p=0.8", "--max-new-tokens", "9", "你好"]
    assert run(capsys, *argv)[0] == 0
    sent = configured.requests[-1]
    assert (sent["top_p"], sent["max_tokens"]) == (0.8, 9) and "temperature" not in sent
    assert run(capsys, "ask", "--model", "local/tiny-chat", "--greedy", "你好")[0] == 0
    assert configured.requests[-1]["temperature"] == 0 and "top_p" not in configured.requests[-1]
