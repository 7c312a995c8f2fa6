"""A saved session read back into panes as the live bench left them, and continued in the same file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from test_bench import loaded, run

from zhbench.engines.registry import load_engine
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.panes import PaneState, ShownEntry
from zhbench.workbench.session.records import ModelRecord, PaneModel
from zhbench.workbench.session.reopen import continue_in, model_spec, reopen
from zhbench.workbench.session.transcripts import TranscriptWriter, read_session, session_files, to_markdown


def shown(entries: list[ShownEntry]) -> list[tuple[object, ...]]:
    """What a pane draws of each entry."""
    return [
        (e.role, e.text, e.stats, e.stopped, e.error, e.reasoning, e.record_id, e.fed_back, e.reply_stats, e.model)
        for e in entries
    ]


def conversation(state: PaneState) -> tuple[object, ...]:
    return (shown(state.shown), state.history, shown(state.reply_versions), state.chosen_version)


def test_a_reopened_session_is_each_pane_as_the_bench_left_it(tmp_path: Path, standin_dir: Callable[..., Path]) -> None:
    bench = Bench(tmp_path, pane_count=3)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    loaded(bench, "b", standin_dir("dialogpt-zh"), "DialoGPT")
    for state in bench.panes[:2]:
        assert state.params is not None
        state.params = state.params.with_overrides({"max_new_tokens": 3, "seed": 1})
    for job in bench.send("你好", ["a", "b"]):
        run(bench, job)
    for _ in range(2):  # three versions of A's reply; the conversation goes on from the second
        job = bench.regenerate("a")
        assert job is not None
        run(bench, job)
    assert bench.choose_reply("a", -1) is not None
    (job,) = bench.send("然后呢", ["b"])
    bench.reply_failed("b", job.generation, "RuntimeError: boom", None)
    assert bench.swap("a", "b")
    for job in bench.send("第三句", ["a", "b"]):
        run(bench, job)
    assert bench.clear("a")
    assert bench.transcript is not None

    reopened = reopen(read_session(bench.transcript.path))
    assert reopened.turn == bench.turn == 3
    for state in bench.panes:
        assert conversation(reopened.panes[state.name]) == conversation(state), state.name
    assert reopened.models["b"] is not None and "gpt2-dialogbot" in str(reopened.models["b"].model)  # after the swap
    assert reopened.models["b"].model == bench.pane("b").label
    assert reopened.params["b"]["max_new_tokens"] == 3 and reopened.params["b"]["seed"] == 1
    assert reopened.models["c"] is None and not reopened.arena and reopened.notes == []


def test_a_continued_session_appends_to_its_own_file_after_damage(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    bench = Bench(tmp_path, pane_count=1)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    for job in bench.send("你好", ["a"]):
        run(bench, job)
    assert bench.transcript is not None
    path = bench.transcript.path
    bench.transcript.close()
    with path.open("ab") as file:
        file.write(b'{"type": "message", "id": "a-2-us')  # a kill in the middle of a line
    reopened = reopen(read_session(path))
    assert reopened.notes == ["1 damaged line(s) of this session could not be read: shown up to them"]

    again = Bench(tmp_path, pane_count=1)
    again.pane("a").engine = load_engine(str(standin_dir("gpt2-dialogbot")), device="cpu")
    again.pane("a").params = bench.pane("a").params
    continue_in(again, reopened)
    (job,) = again.send("再见", ["a"])
    assert job.history[:2] == bench.pane("a").history
    run(again, job)
    assert session_files(tmp_path) == [path]
    session = read_session(path)
    assert session.damaged_lines == 1  # the torn line stays as it was; what follows it reads
    assert [(m.turn, m.content) for m in session.messages if m.role == "user"] == [(1, "你好"), (2, "再见")]


def reloaded(bench: Bench, name: str, path: Path) -> None:
    """What reopening does for a pane after ``continue_in``: its model loaded again, carrying the conversation."""
    generation = bench.begin_load(name, path.name, keep_conversation=True)
    assert generation is not None
    bench.model_loaded(name, generation, load_engine(str(path), device="cpu"), demo=False)


def test_a_reply_regenerated_after_reopening_keeps_the_version_before_it(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    bench = Bench(tmp_path, pane_count=1)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    for job in bench.send("你好", ["a"]):
        run(bench, job)
    assert bench.transcript is not None
    path = bench.transcript.path
    bench.transcript.close()

    again = Bench(tmp_path, pane_count=1)
    continue_in(again, reopen(read_session(path)))
    reloaded(again, "a", standin_dir("gpt2-dialogbot"))
    job = again.regenerate("a")
    assert job is not None
    run(again, job)
    replies = [m for m in read_session(path).messages if m.role == "assistant"]
    assert len(replies) == 2 and replies[1].regenerates == replies[0].id != replies[1].id
    assert [e.record_id for e in again.pane("a").reply_versions] == [r.id for r in replies]
    markdown = to_markdown(read_session(path))
    assert "version 2 of 2" in markdown and "Version 1 of 2: replaced by regeneration" in markdown


def test_an_older_schema_reopens(tmp_path: Path) -> None:
    lines = [
        {"panes": {"a": {"model": "tiny", "family": "chatyuan", "path": "/d/chatyuan", "device": "cpu",
                         "dtype": "float32", "params": {"seed": None}}},
         "type": "session", "id": "20261124-101500-abc123", "started": "2026-11-24T10:15:00.000+00:00"},
        {"type": "message", "id": "a-1-user", "pane": "a", "turn": 1, "role": "user", "content": "你好"},
        {"type": "message", "id": "a-1-2", "pane": "a", "turn": 1, "role": "assistant", "content": "嗯",
         "params": {"seed": 7, "temperature": 0.5}, "partial": False},
    ]  # fmt: skip
    path = tmp_path / "20261124-101500-abc123.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    reopened = reopen(read_session(path))
    assert reopened.panes["a"].history == [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "嗯"}]
    assert reopened.params["a"] == {"seed": None, "temperature": 0.5}  # the pane's own seed, not the one drawn


def test_a_model_that_is_gone_or_on_an_unknown_server_says_why(tmp_path: Path) -> None:
    from zhbench.engines.remote.server import ad_hoc_server

    here = PaneModel("m", "chatyuan", str(tmp_path), "cpu", None)
    assert model_spec(here, {}) == (str(tmp_path), None)
    assert model_spec(PaneModel("m", "chatyuan", str(tmp_path / "gone"), "cpu", None), {})[1] == (
        f"{tmp_path / 'gone'} is no longer on this machine"
    )
    served = PaneModel("qwen", "openai", None, None, None, base_url="http://127.0.0.1:9/v1", server_model="qwen3")
    assert model_spec(served, {"local": ad_hoc_server("http://127.0.0.1:9/v1/")}) == ("local/qwen3", None)
    assert "not in the config any more" in (model_spec(served, {})[1] or "")


def test_a_pane_added_mid_session_reopens_and_one_taken_away_does_not(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    bench = Bench(tmp_path, pane_count=2)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    for job in bench.send("你好", ["a"]):
        run(bench, job)
    assert bench.add_pane() == "c" and bench.add_pane() == "d" and bench.names == ["a", "b", "c", "d"]
    loaded(bench, "c", standin_dir("dialogpt-zh"), "DialoGPT")
    loaded(bench, "d", standin_dir("gpt2-dialogbot"), "dialogbot")
    for job in bench.send("第二句", ["a", "c", "d"]):
        run(bench, job)
    assert bench.transcript is not None
    reopened = reopen(read_session(bench.transcript.path))
    assert reopened.pane_count == 4 and conversation(reopened.panes["c"]) == conversation(bench.pane("c"))
    assert reopened.models["c"] is not None and reopened.models["c"].model == bench.pane("c").label

    assert bench.remove_pane() == "d" and bench.names == ["a", "b", "c"]
    reopened = reopen(read_session(bench.transcript.path))
    assert reopened.pane_count == 3 and reopened.models["d"] is None and not reopened.panes["d"].shown
    # the transcript keeps what the pane said before it was taken away
    assert [m.content for m in read_session(bench.transcript.path).messages if m.pane == "d" and m.role == "user"] == [
        "第二句"
    ]


def test_a_replying_or_only_pane_is_not_taken_away(tmp_path: Path, standin_dir: Callable[..., Path]) -> None:
    bench = Bench(tmp_path, pane_count=2)
    loaded(bench, "b", standin_dir("gpt2-dialogbot"), "dialogbot")
    (job,) = bench.send("你好", ["b"])
    assert bench.remove_pane() is None and bench.names == ["a", "b"]  # B is replying
    run(bench, job)
    assert bench.remove_pane() == "b" and bench.remove_pane() is None and bench.names == ["a"]


def test_a_reopened_pane_is_recorded_with_the_settings_it_goes_on_with(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    bench = Bench(tmp_path, pane_count=2)
    engine = load_engine(str(standin_dir("gpt2-dialogbot")), device="cpu")
    bench.transcript = TranscriptWriter(tmp_path, {"a": None, "b": None})
    for name, settings in (("a", {"max_new_tokens": 3}), ("b", {"max_new_tokens": -5})):
        generation = bench.begin_load(name, "dialogbot", keep_conversation=True)
        assert generation is not None
        bench.restore_settings(name, generation, settings)
        problem = bench.model_loaded(name, generation, engine, demo=False)
        assert (problem is None) == (name == "a"), problem
    assert "Pane B: the session's settings no longer apply" in (problem or "")
    recorded = [r.model for r in read_session(bench.transcript.path).records if isinstance(r, ModelRecord)]
    defaults = bench.initial_params(engine)[0].max_new_tokens
    assert [(m.params or {})["max_new_tokens"] for m in recorded if m] == [3, defaults]
    assert bench.pane("a").params is not None and bench.pane("a").params.max_new_tokens == 3
