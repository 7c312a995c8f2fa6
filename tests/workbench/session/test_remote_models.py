"""A server model in a pane: loaded the way the app loads one, recorded with its server's URL (never its
credentials) and the model id the server lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines.remote.fake_server import FakeServer, serve
from zhbench.engines.remote.server import ad_hoc_server, servers_from_config
from zhbench.workbench.session.config import load_config
from zhbench.workbench.session.model_specs import load_model_spec, server_model
from zhbench.workbench.session.panes import PaneState
from zhbench.workbench.session.records import ModelRecord, PaneModel

KEY = "sk-pane-secret-0123456789"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    yield from serve(FakeServer())


def test_the_transcript_records_the_base_url_and_model_id_but_no_credentials(fake_server, monkeypatch):
    monkeypatch.setenv("ZH_PANE_KEY", KEY)
    url = fake_server.url.replace("http://", "http://user:pw-in-url@")
    servers = {"local": ad_hoc_server(url, name="local", api_key_env="ZH_PANE_KEY")}
    pane = PaneState("a", engine=load_model_spec("local/tiny-chat", servers=servers), label="local/tiny-chat")
    recorded = pane.model()
    assert recorded is not None
    data = ModelRecord("a", "now", recorded).to_json()
    assert (data["family"], data["base_url"], data["server_model"]) == ("openai-compat", fake_server.url, "tiny-chat")
    assert KEY not in str(data) and "pw-in-url" not in str(data)
    assert PaneModel.from_json(data) == recorded
    assert recorded.label() == f"local/tiny-chat (openai-compat, {fake_server.url})"


def test_a_local_models_record_keeps_its_shape():
    local = PaneModel(model="m", family="chatyuan", path="/m", device="cpu", dtype="float32")
    assert "base_url" not in local.to_json()


def test_server_names_win_only_when_configured():
    servers, _ = servers_from_config({"Qwen": {"base_url": "http://127.0.0.1:1/v1"}})
    assert server_model("Qwen/Qwen3-8B", servers) == (servers["Qwen"], "Qwen3-8B")
    assert server_model("Qwen/a/b", servers) == (servers["Qwen"], "a/b")
    assert server_model("THUDM/glm-4-9b-chat", servers) is None
    assert server_model("Qwen/", servers) is None


def test_the_config_reads_server_tables_and_names_what_is_wrong(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(
        """
[servers.good]
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "GOOD_KEY"
models = ["a", "b"]
timeout_s = 30
extra = { chat_template_kwargs = { enable_thinking = false } }

[servers.nourl]
api_key_env = "X"

[servers.keyinstead]
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "sk-abcdef0123456789"

[servers.typo]
base_url = "http://127.0.0.1:8000/v1"
timeout = 3
""",
        encoding="utf-8",
    )
    config = load_config(path)
    good = config.servers["good"]
    assert list(config.servers) == ["good"]
    assert (good.models, good.timeout_s, good.api_key_env) == (("a", "b"), 30.0, "GOOD_KEY")
    assert good.extra == {"chat_template_kwargs": {"enable_thinking": False}}
    problems = "\n".join(config.problems)
    assert "[servers.nourl]: needs base_url" in problems
    assert "[servers.keyinstead]: api_key_env should be the upper-case NAME" in problems
    assert "sk-abcdef" not in problems
    assert "[servers.typo]: unknown key 'timeout'" in problems


def test_the_app_worker_loads_a_server_model_into_a_pane(fake_server, tmp_path):
    from zhbench.workbench import workers

    posted: list[object] = []
    servers = {"local": ad_hoc_server(fake_server.url, name="local")}
    workers.load_model(
        posted.append, "a", 1, "local/tiny-chat", device="cpu", strategy=None, demo_folder=tmp_path, servers=servers
    )
    loaded = posted[-1]
    assert isinstance(loaded, workers.ModelLoaded)
    assert loaded.engine.describe().details["server"] == "local"

    posted.clear()
    workers.load_model(
        posted.append, "a", 2, "local/nope", device="cpu", strategy=None, demo_folder=tmp_path, servers=servers
    )
    failed = posted[-1]
    assert isinstance(failed, workers.ModelLoadFailed)
    assert failed.reason == "local: unknown model 'nope' (it serves: tiny-chat)"
