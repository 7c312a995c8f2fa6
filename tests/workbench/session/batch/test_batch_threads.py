"""A batch answers as ``ask`` and the app answer: each reply on a thread of its own, not on the thread that
loaded the model (on a busy CPU that thread's OpenMP team ran replies 20-30x slower; bench_batch_load.py),
and Ctrl+C still stops the reply under way and keeps what was answered."""

from __future__ import annotations

import json
import threading

import pytest

from zhbench.engines.api import default_params
from zhbench.workbench.session.batch.runner import run_batch
from zhbench.workbench.session.batch.store import BatchStore, read_run


def test_each_reply_runs_on_a_thread_of_its_own(tmp_path, make_settings, progress, engine_for, monkeypatch) -> None:
    engine = engine_for("gpt2-dialogbot")
    threads: list[int] = []
    real_reply = engine.reply

    def watched_reply(*args, **kwargs):
        threads.append(threading.get_ident())
        return real_reply(*args, **kwargs)

    monkeypatch.setattr(engine, "reply", watched_reply)
    loaded_on: list[int] = []

    def load(_: str):
        loaded_on.append(threading.get_ident())
        return engine

    def short(engine):
        return default_params(engine).with_overrides({"max_new_tokens": 4})

    with BatchStore(tmp_path / "run", make_settings(["tiny"], items=3)) as store:
        run_batch(store, ["tiny"], load=load, settings_for=short, progress=progress)
    assert len(read_run(tmp_path / "run").answered()) == 3
    assert len(threads) == 3 and loaded_on[0] not in threads


def test_ctrl_c_while_a_reply_runs_stops_it_and_keeps_the_answers(tmp_path, make_settings, progress, scripted) -> None:
    engine = scripted(lambda history, params: "好" * 10)
    settings = make_settings(["m"], items=3)
    calls = 0
    real_reply = engine.reply

    def interrupting_reply(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:  # Ctrl+C reaches the main thread while it waits for the second reply
            import _thread

            _thread.interrupt_main()
            cancel = kwargs["cancel"]
            assert cancel.wait(5)  # the wait was interrupted: the reply is told to stop
        return real_reply(*args, **kwargs)

    engine.reply = interrupting_reply
    with BatchStore(tmp_path / "run", settings) as store, pytest.raises(KeyboardInterrupt):
        run_batch(store, ["m"], load=lambda _: engine, settings_for=lambda e: e.presets()["default"], progress=progress)
    assert len(read_run(tmp_path / "run").answered()) == 1


def test_ask_json_answers_on_a_thread_of_its_own_too(capsys, standin_dir, monkeypatch) -> None:
    from zhbench.workbench.cli import chat, main

    threads: list[int] = []
    real_load = chat.load

    def watched_load(args):
        engine = real_load(args)
        real_reply = engine.reply

        def watched_reply(*reply_args, **kwargs):
            threads.append(threading.get_ident())
            return real_reply(*reply_args, **kwargs)

        monkeypatch.setattr(engine, "reply", watched_reply)
        return engine

    monkeypatch.setattr(chat, "load", watched_load)
    model = str(standin_dir("gpt2-dialogbot"))
    assert main(["ask", "--model", model, "--json", "--set", "max_new_tokens=3", "你好"]) == 0
    assert threads and threads[0] != threading.get_ident()
    assert json.loads(capsys.readouterr().out)["stats"]["new_tokens"] <= 3
