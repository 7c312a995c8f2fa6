"""A bench session without a screen: N panes, turns, replies run by the caller, every record written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from zhbench.engines.api import ReplyStream
from zhbench.engines.errors import GenerationError
from zhbench.engines.registry import load_engine
from zhbench.workbench.session.bench import Bench, ReplyJob
from zhbench.workbench.session.records import ChoiceRecord, ModelRecord
from zhbench.workbench.session.transcripts import read_session


def run(bench: Bench, job: ReplyJob) -> None:
    """What the app's worker does, in this thread: stream the reply and report it to the bench."""
    stream = ReplyStream(
        job.engine,
        job.history,
        job.params,
        cancel=job.cancel,
        on_text=lambda text: bench.reply_progressed(job.pane, job.generation, text),
    )
    try:
        reply = stream.run()
    except GenerationError as exc:
        bench.reply_failed(job.pane, job.generation, str(exc), exc.partial)  # type: ignore[arg-type]
    else:
        bench.reply_finished(job.pane, job.generation, reply)


def loaded(bench: Bench, name: str, path: Path, label: str) -> None:
    generation = bench.begin_load(name, label)
    assert generation is not None
    bench.model_loaded(name, generation, load_engine(str(path), device="cpu"), demo=False)


@pytest.fixture
def three_panes(tmp_path: Path, standin_dir: Callable[..., Path]) -> Bench:
    bench = Bench(tmp_path / "transcripts", pane_count=3, param_overrides={"chatyuan": {"max_new_tokens": "6"}})
    loaded(bench, "a", standin_dir("chatyuan"), "元语")
    loaded(bench, "b", standin_dir("dialogpt-zh"), "DialoGPT")
    loaded(bench, "c", standin_dir("gpt2-dialogbot"), "dialogbot")
    for state in bench.panes:
        assert state.params is not None
        state.params = state.params.with_overrides({"max_new_tokens": 6, "seed": 1})
    return bench


def test_one_message_goes_to_every_pane_and_each_reply_is_recorded(three_panes: Bench) -> None:
    bench = three_panes
    jobs = bench.send("你好", bench.names)
    assert [job.pane for job in jobs] == ["a", "b", "c"] and bench.turn == 1
    for job in jobs:
        run(bench, job)
    assert all(not state.busy and state.history[-1]["role"] == "assistant" for state in bench.panes)
    assert bench.transcript is not None
    session = read_session(bench.transcript.path)
    assert sorted(session.header.panes) == ["a", "b", "c"] and session.header.panes["c"].model == "tiny-gpt2-dialogbot"
    users = [m for m in session.messages if m.role == "user"]
    assert [(m.pane, m.to) for m in users] == [(p, ("a", "b", "c")) for p in "abc"]
    replies = {m.pane: m for m in session.messages if m.role == "assistant"}
    assert all(replies[p].content == bench.pane(p).history[-1]["content"] and not replies[p].partial for p in "abc")
    assert replies["a"].params["seed"] == 1 and replies["a"].stats["new_tokens"] <= 6
    # every pane runs a stand-in: the records say their replies are noise (issue 18, item 3)
    assert all(pane is not None and pane.random_weights and not pane.demo for pane in session.header.panes.values())


def test_a_busy_pane_is_not_sent_to_and_says_why(three_panes: Bench) -> None:
    bench = three_panes
    (job,) = bench.send("只给A", ["a"])
    assert bench.why_not_ready("a") == "is still replying (Esc stops it)"
    assert [j.pane for j in bench.send("第二句", ["a", "b"])] == ["b"]
    run(bench, job)
    assert bench.why_not_ready("a") is None


def test_the_config_settings_apply_and_a_wrong_one_is_named(tmp_path: Path, standin_dir: Callable[..., Path]) -> None:
    bench = Bench(tmp_path, param_overrides={"chatyuan": {"temperature": "-1"}})
    engine = load_engine(str(standin_dir("chatyuan")), device="cpu")
    generation = bench.begin_load("a", "元语")
    assert generation is not None
    problem = bench.model_loaded("a", generation, engine, demo=False)
    assert problem is not None and "config [params.chatyuan]" in problem and "temperature" in problem
    assert bench.pane("a").params == engine.default_params()


def test_reports_about_an_ended_reply_or_a_replaced_load_change_nothing(
    three_panes: Bench, standin_dir: Callable[..., Path]
) -> None:
    bench = three_panes
    (job,) = bench.send("你好", ["a"])
    reply = ReplyStream(job.engine, job.history, job.params).run()
    assert bench.reply_finished("a", job.generation, reply) is not None
    # a piece or an end reported late, after the reply was recorded, is not added to it
    assert not bench.reply_progressed("a", job.generation, "迟到的")
    assert bench.reply_finished("a", job.generation, reply) is None
    assert bench.pane("a").history[-1]["content"] == reply.text and len(bench.pane("a").history) == 2
    # a load that a newer load replaced reports in vain
    older = bench.begin_load("b", "first choice")
    newer = bench.begin_load("b", "second choice")
    assert older is not None and newer is not None
    engine = load_engine(str(standin_dir("chatyuan")), device="cpu")
    bench.model_loaded("b", older, engine, demo=False)
    assert bench.pane("b").loading == "second choice" and bench.pane("b").engine is not engine
    bench.model_loaded("b", newer, engine, demo=False)
    assert bench.pane("b").engine is engine and bench.pane("b").label == "tiny-chatyuan"  # the model's id


def test_regenerate_marks_the_reply_it_replaces_and_swap_moves_whole_conversations(three_panes: Bench) -> None:
    bench = three_panes
    for job in bench.send("你好", ["a", "b"]):
        run(bench, job)
    first = bench.pane("a").shown[-1].record_id
    job = bench.regenerate("a")
    assert job is not None and job.history == [{"role": "user", "content": "你好"}]
    run(bench, job)
    assert bench.transcript is not None
    regenerated = [m for m in read_session(bench.transcript.path).messages if m.regenerates == first]
    assert len(regenerated) == 1
    a_engine, b_history = bench.pane("a").engine, list(bench.pane("b").history)
    assert bench.swap("a", "b")
    assert bench.pane("b").engine is a_engine and bench.pane("a").history == b_history
    assert [p.name for p in bench.panes] == ["a", "b", "c"]


def test_regenerated_versions_stay_and_the_one_chosen_is_what_the_next_turn_carries(three_panes: Bench) -> None:
    """Issue 18, item 11: Ctrl+R dropped the earlier reply for good; now each version can be gone back to,
    and the conversation goes on from the one shown."""
    bench = three_panes
    state = bench.pane("a")
    (job,) = bench.send("你好", ["a"])
    bench.reply_failed("a", job.generation, "RuntimeError: boom", None)  # a failed first version
    assert state.reply_version() is None and bench.choose_reply("a", -1) is None  # one version: nothing to browse
    versions = []
    for seed in (1, 2):
        assert state.params is not None
        state.params = state.params.with_overrides({"seed": seed})
        job = bench.regenerate("a")
        assert job is not None and job.history == [{"role": "user", "content": "你好"}]
        assert bench.choose_reply("a", -1) is None  # not while it replies
        run(bench, job)
        versions.append(state.shown[-1])
    failed, first, second = state.reply_versions
    assert (failed.error, versions) == ("RuntimeError: boom", [first, second])
    assert state.reply_version() == (3, 3) and bench.choose_reply("a", 1) is None  # the newest is shown
    assert bench.choose_reply("a", -1) is first
    assert state.reply_version() == (2, 3) and state.history[-1] == {"role": "assistant", "content": first.fed_back}
    assert bench.choose_reply("a", -1) is failed
    assert state.history == [{"role": "user", "content": "你好"}]  # a failed reply is shown, never fed back
    assert bench.choose_reply("a", -1) is None
    assert bench.choose_reply("a", 1) is first
    (job,) = bench.send("然后呢", ["a"])
    assert job.history[1] == {"role": "assistant", "content": first.fed_back}  # the next turn carries version 2
    run(bench, job)
    assert state.reply_version() is None  # a new last reply, one version of it
    assert bench.transcript is not None
    session = read_session(bench.transcript.path)
    replies = [m for m in session.messages if m.role == "assistant"]
    assert [m.regenerates for m in replies] == [None, failed.record_id, first.record_id, None]
    choices = [r.reply for r in session.records if isinstance(r, ChoiceRecord)]
    assert choices == [first.record_id, failed.record_id, first.record_id]


@pytest.mark.slow
def test_a_model_loaded_into_a_talking_pane_carries_on_its_conversation_or_starts_anew(
    three_panes: Bench, standin_dir: Callable[..., Path]
) -> None:
    bench = three_panes
    for job in bench.send("你好", ["a", "b"]):
        run(bench, job)
    history = list(bench.pane("a").history)
    generation = bench.begin_load("a", "another", keep_conversation=True)
    assert generation is not None
    assert bench.regenerate("a") is None  # not by the old model while the new one loads (its load was lost)
    bench.model_loaded("a", generation, load_engine(str(standin_dir("dialogpt-zh")), device="cpu"), demo=False)
    assert bench.pane("a").history == history and bench.pane("a").label == "tiny-dialogpt-zh"
    (job,) = bench.send("接着说", ["a"])
    assert job.history[:2] == history  # the new model answers the conversation so far
    run(bench, job)
    loaded(bench, "b", standin_dir("chatyuan"), "fresh")
    assert bench.pane("b").history == [] and bench.pane("b").shown == []
    assert bench.transcript is not None
    changes = [r for r in read_session(bench.transcript.path).records if isinstance(r, ModelRecord)]
    assert [(r.pane, r.kept_conversation) for r in changes] == [("a", True), ("b", False)]


def test_a_thinking_reply_is_recorded_apart_and_fed_back_whole(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    bench = Bench(tmp_path / "transcripts", pane_count=1)
    loaded(bench, "a", standin_dir("chat-template"), "Qwen3 (tiny)")
    engine = bench.pane("a").engine
    encode = engine.tokenizer.encode  # type: ignore[union-attr]
    script = [*encode("<think>\n先想想\n</think>\n\n"), *encode("答案是四"), *engine.end_ids]  # type: ignore[union-attr]
    engine.token_source = lambda generation: iter(script)  # type: ignore[union-attr]
    (job,) = bench.send("二加二？", ["a"])
    run(bench, job)
    assert bench.transcript is not None
    reply = read_session(bench.transcript.path).messages[-1]
    assert (reply.content, reply.reasoning) == ("答案是四", "先想想")
    assert reply.stats is not None and reply.stats["reasoning_tokens"] > 0
    assert bench.pane("a").history[-1]["content"].startswith("<think>")  # the template decides what to keep
    assert bench.pane("a").shown[-1].reasoning == "先想想"


def test_the_session_layer_loads_no_textual_and_no_torch() -> None:
    code = (
        "import sys, workbench.session.bench, workbench.session.transcripts, workbench.session.offer; "
        "print(sorted({'textual', 'torch', 'transformers', 'rich', 'widgets'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_stats_line_shows_the_seed_a_reply_drew(tmp_path: Path, standin_dir: Callable[..., Path]) -> None:
    """Issue 18, item 6: a sampled reply a person liked can be drawn again from what the pane shows."""
    bench = Bench(tmp_path / "transcripts", pane_count=1)
    loaded(bench, "a", standin_dir("gpt2-dialogbot"), "dialogbot")
    state = bench.pane("a")
    assert state.params is not None and state.params.seed is None and not state.params.greedy
    state.params = state.params.with_overrides({"max_new_tokens": 3})
    (job,) = bench.send("你好", ["a"])
    run(bench, job)
    assert bench.transcript is not None
    (reply,) = [m for m in read_session(bench.transcript.path).messages if m.role == "assistant"]
    drawn = reply.params["seed"]
    assert isinstance(drawn, int)
    assert state.shown[-1].stats is not None and state.shown[-1].stats.endswith(f" · seed {drawn}")
    state.params = state.params.with_overrides({"greedy": True})
    (job,) = bench.send("再见", ["a"])
    run(bench, job)
    assert state.shown[-1].stats is not None and "seed" not in state.shown[-1].stats  # greedy draws nothing


def test_stopping_records_what_a_reply_has_said_so_far(three_panes: Bench) -> None:
    """Issue 18, item 26: Ctrl+Q mid-reply stops the replies and the app exits before they report their end;
    only the last checkpoint (up to a second old) was on disk."""
    bench = three_panes
    jobs = bench.send("你好", ["a", "b"])
    for piece in ("第一句。", "第二句。", "第三句。"):  # faster than the checkpoints
        assert bench.reply_progressed("a", jobs[0].generation, piece)
    bench.stop(bench.names)
    assert all(job.cancel.is_set() for job in jobs)
    assert bench.transcript is not None
    replies = [m for m in read_session(bench.transcript.path).messages if m.role == "assistant"]
    # all that pane a said, partial; pane b had said nothing
    assert [(m.pane, m.content, m.partial) for m in replies] == [("a", "第一句。第二句。第三句。", True)]


def test_the_arena_decodes_both_sides_alike_whatever_their_upstream_defaults(
    tmp_path: Path, standin_dir: Callable[..., Path]
) -> None:
    from zhbench.workbench.session.arena.rounds import ARENA_DECODING

    bench = Bench(tmp_path, decoding=ARENA_DECODING, arena=True)
    for pane, family in zip("ab", ("chat-template", "dialogpt-zh"), strict=True):
        generation = bench.begin_load(pane, family)
        assert generation is not None
        engine = load_engine(str(standin_dir(family)), device="cpu")
        assert bench.model_loaded(pane, generation, engine, demo=False) is None
    shared = ("greedy", "num_beams", "temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens")
    a, b = (bench.pane(name).params for name in "ab")
    assert a is not None and b is not None
    assert {k: getattr(a, k) for k in shared} == {k: getattr(b, k) for k in shared}
    assert a.repetition_penalty == 1.0  # the chat-template stand-in's own generation_config asks 1.1


def test_a_gguf_models_transcript_names_its_quantization_and_files_sha256(tmp_path: Path, engine_for) -> None:
    import hashlib

    engine = engine_for("gguf")
    bench = Bench(tmp_path / "transcripts", pane_count=1)
    generation = bench.begin_load("a", "tiny-gguf")
    assert generation is not None
    bench.model_loaded("a", generation, engine, demo=False)
    bench.pane("a").params = bench.pane("a").params.with_overrides({"max_new_tokens": 2})
    (job,) = bench.send("你好", ["a"])
    run(bench, job)
    assert bench.transcript is not None
    model = read_session(bench.transcript.path).header.panes["a"]
    assert model is not None and model.quantization == "Q8_0"
    assert model.sha256 == hashlib.sha256(Path(engine.describe().path).read_bytes()).hexdigest()
