"""``zhbench serve`` serves a GGUF model like any other family: the official ``openai`` client gets the
engine's own greedy reply, whole and streamed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.workbench.session.serving.conftest import RunningServer
from zhbench.engines.api import default_params

pytest.importorskip("llama_cpp", reason="the gguf extra is not installed (pip install -e '.[gguf]')")

MODEL = "tiny-gguf"
QUESTION = "今天天气怎么样"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The GGUF file's sha256 cache goes to the test's folder, not the developer's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def served(serve_models: Callable[..., RunningServer], engine_for: Callable[[str], Any]) -> RunningServer:
    return serve_models({MODEL: engine_for("gguf")})


def local_text(engine: Any, max_tokens: int) -> Any:
    params = default_params(engine).with_overrides({"greedy": True, "max_new_tokens": max_tokens})
    return engine.reply([{"role": "user", "content": QUESTION}], params)


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


def test_a_gguf_model_answers_the_openai_client_with_its_local_greedy_reply(
    served: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    local = local_text(engine_for("gguf"), 6)
    assert local.stats.new_tokens > 0
    api = client(served)
    assert [model.id for model in api.models.list()] == [MODEL]
    completion = api.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=6
    )
    assert completion.choices[0].message.content == local.text
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        len(local.prompt.input_ids),
        local.stats.new_tokens,
    )


def test_a_gguf_model_streams_its_local_greedy_reply_in_openai_chunks(
    served: RunningServer, engine_for: Callable[[str], Any]
) -> None:
    local = local_text(engine_for("gguf"), 8)
    stream = client(served).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == local.text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == local.stats.new_tokens
