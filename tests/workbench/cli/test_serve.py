"""``zhbench serve`` as a user runs it: a process that answers while its models load, wants its key, logs
each reply in one line, and never prints the key; and the mistakes it refuses before serving."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.cli.common import EXIT_INTERRUPTED

KEY = "sk-serve-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_while_loading_then_serves_each_model_with_the_key_and_stops_on_ctrl_c(
    standin_dir: Callable[..., Path],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    models = [standin_dir("gpt2-dialogbot"), standin_dir("chatyuan")]
    command = [sys.executable, "-m", "zhbench", "serve", "--port", str(port), "--device", "cpu"]
    command += ["--api-key-env", "ZH_SERVE_KEY"] + [arg for model in models for arg in ("--model", str(model))]
    process = subprocess.Popen(
        command, env={**os.environ, "ZH_SERVE_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    key = {"Authorization": f"Bearer {KEY}"}
    try:
        deadline = time.monotonic() + 120
        listed: list[dict[str, object]] = []
        while not listed or not all(model["ready"] for model in listed):
            assert process.poll() is None and time.monotonic() < deadline, "serve did not come up"
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                listed = httpx.get(f"{url}/models", headers=key).json()["data"]
            time.sleep(0.2)
        assert [model["id"] for model in listed] == ["tiny-gpt2-dialogbot", "tiny-chatyuan"]
        body = {"model": "tiny-chatyuan", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 3}
        assert httpx.post(f"{url}/chat/completions", json=body, timeout=60).status_code == 401
        answered = httpx.post(f"{url}/chat/completions", json=body, headers=key, timeout=60)
        assert answered.status_code == 200 and answered.json()["usage"]["completion_tokens"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, err  # stopped by Ctrl+C, after uvicorn's graceful shutdown
    assert f"http://127.0.0.1:{port}/v1" in out and "tiny-chatyuan ready (chatyuan, cpu float32)" in out
    assert "tiny-chatyuan: 3 tokens" in err  # one line per reply
    assert KEY not in out + err


def test_serve_refuses_a_key_in_place_of_its_name_an_unset_key_and_two_models_of_one_name(
    standin_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(standin_dir("gpt2-dialogbot"))
    monkeypatch.delenv("ZH_UNSET_KEY", raising=False)
    for options, complaint in (
        (["--api-key-env", KEY], "NAME of an environment variable"),
        (["--api-key-env", "ZH_UNSET_KEY"], "ZH_UNSET_KEY is not set"),
        (["--model", model], "two models would be served as tiny-gpt2-dialogbot"),
    ):
        assert main(["serve", "--model", model, *options]) == 1
        err = capsys.readouterr().err
        assert complaint in err and KEY not in err


def test_a_model_that_cannot_load_stops_the_server_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--model", str(tmp_path / "nowhere"), "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zhbench: error:") and "nowhere" in err


def test_a_busy_port_is_refused_before_any_model_loads_and_a_port_out_of_range_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # the model does not exist: had it been loaded first, the line would name it
        assert main(["serve", "--model", str(tmp_path / "nowhere"), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port} on 127.0.0.1 is in use" in err and "nowhere" not in err
    for options, complaint in (
        (["--port", "99999"], "--port must be from 1 to 65535, not 99999"),
        (["--port", "-1"], "--port must be from 1 to 65535"),
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' is not an address of this machine"),
        (["--allow-host", "evil.*"], "--allow-host 'evil.*'"),
    ):
        assert main(["serve", "--model", str(tmp_path / "nowhere"), *options]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and complaint in err, err


def test_serve_refuses_a_key_with_a_control_character_without_printing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZH_SERVE_KEY", f"{KEY}\n")
    assert main(["serve", "--model", str(tmp_path / "nowhere"), "--api-key-env", "ZH_SERVE_KEY"]) == 1
    err = capsys.readouterr().err
    assert "holds a control or non-ASCII character" in err and KEY[:6] not in err
