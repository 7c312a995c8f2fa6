"""The judge: verdicts read strictly (the last mark, five levels, none guessed), each pair judged in both
orders, win rates with bootstrap intervals, consistency across the swap, resuming, the report, and the
verdicts as judge votes left out of the leaderboard by default."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from zhbench.engines.remote.openai_compat import RemoteParams
from zhbench.engines.types import GenerationParams
from zhbench.workbench.session.arena.leaderboard import select_outcomes
from zhbench.workbench.session.arena.votes import VoteStore
from zhbench.workbench.session.batch.judge import (
    BASELINE_FIRST,
    BUILTIN_PROMPT,
    MODEL_FIRST,
    JudgePrompt,
    JudgePromptError,
    JudgeStore,
    judge_settings,
    parse_verdict,
    read_judge_file,
    read_judge_prompt,
    run_judge,
)
from zhbench.workbench.session.batch.judge_results import bootstrap_interval, judge_battles, pair_results, record_votes
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.report import build_report, render, report_json
from zhbench.workbench.session.batch.runner import run_batch
from zhbench.workbench.session.batch.store import BatchStore, read_run

ANSWERS = {"base": "基线的回答", "strong": "更好的回答", "odd": "另一个回答"}


#: what a judge's reply may hold: markup, script, a terminal escape
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">点我</a>',
    "</details><style>body{display:none}</style>\x1b[31m",
]


def preset(engine):
    return engine.presets()["default"]


def shown(history):
    """The two answers as the judge saw them, read back from its prompt."""
    text = history[-1]["content"]
    found = re.findall(r"\[助手[AB]的回答开始\]\n(.*?)\n\[助手[AB]的回答结束\]", text, re.S)
    assert len(found) == 2, text
    return found


@pytest.fixture
def answered(run_dir, make_settings, scripted, progress):
    """A finished run: base, strong and odd answering 6 items."""

    def by_model(name):  # each model in a folder of its name, which is then its id
        return scripted(lambda history, params: ANSWERS[name], path=f"/models/{name}")

    models = ["base", "strong", "odd"]
    with BatchStore(run_dir, make_settings(models, items=6)) as store:
        run_batch(store, models, load=by_model, settings_for=preset, progress=progress)
    return read_run(run_dir)


def judge_with(run_dir, answered, scripted, progress, verdict, *, baseline="base", **engine_options):
    """Judge ``answered`` with a scripted judge whose reply is ``verdict(answer_a, answer_b, history)``."""
    engine = scripted(lambda history, params: verdict(*shown(history), history), **engine_options)
    setup = judge_settings("judge", BUILTIN_PROMPT, {})
    with JudgeStore(run_dir, setup) as store:
        state = run_judge(store, answered, baseline, load=lambda _: engine, settings_for=preset, progress=progress)
        path = store.path
    return engine, state, read_judge_file(path)


def prefers_strong(a, b, history):
    """Knows quality: "strong" beats the base in either order; the base beats "odd" strongly; ``odd`` item 0
    gets no verdict at all."""
    if "问题0" in history[-1]["content"] and ANSWERS["odd"] in (a, b):
        return "两个回答都不错，难以取舍。"
    if ANSWERS["strong"] in (a, b):
        return "理由：A 更准确。[[A]]" if a == ANSWERS["strong"] else "理由：B 更准确。[[B]]"
    return "理由……[[B>>A]]" if a == ANSWERS["odd"] else "理由……[[A>>B]]"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("理由……[[A]]", "A"),
        ("[[C]]", "C"),
        ("先说[[A]]，再想想，最终：[[B>>A]]", "B>>A"),
        ("[[A>B]] [[A=B]]", "A=B"),
        ("结论：[[B>A]]\n", "B>A"),
        ("两个都好", None),
        ("[[ A ]] [A] 【【A】】 [[D]] [[a]]", None),
        ("", None),
    ],
)
def test_the_verdict_is_the_last_mark_in_the_fixed_format(text, verdict):
    assert parse_verdict(text) == verdict


def test_the_prompt_fills_each_placeholder_once_and_puts_the_system_message_where_the_family_reads_it():
    item = PromptItem("q", ({"role": "user", "content": "1+1=?"},), reference="2")
    messages, settings = BUILTIN_PROMPT.request(item, "答案是{answer_b}", "<b>3</b>", RemoteParams())
    user = messages[0]["content"]
    assert [m["role"] for m in messages] == ["user"] and settings.system_prompt == BUILTIN_PROMPT.system
    assert "答案是{answer_b}\n[助手A的回答结束]" in user and "<b>3</b>" in user  # the answer's braces stay text
    assert "[参考答案]\n2\n[参考答案结束]" in user and "1+1=?" in user
    messages, settings = BUILTIN_PROMPT.request(
        PromptItem("q", ({"role": "user", "content": "你好"},)), "a", "b", GenerationParams()
    )
    assert messages[0]["content"].startswith(BUILTIN_PROMPT.system) and "[参考答案]" not in messages[0]["content"]


def test_a_prompt_file_needs_both_answers(tmp_path):
    text = tmp_path / "judge.txt"
    text.write_text("比较：{question}\nA：{answer_a}\nB：{answer_b}\n最后写 [[A]] 或 [[B]]", encoding="utf-8")
    assert read_judge_prompt(text) == JudgePrompt(str(text), "", text.read_text(encoding="utf-8"))
    as_json = tmp_path / "judge.json"
    as_json.write_text(json.dumps({"system": "你是评审", "template": "{answer_a} {answer_b}"}), encoding="utf-8")
    assert read_judge_prompt(as_json).system == "你是评审"
    text.write_text("只有 {answer_a}", encoding="utf-8")
    with pytest.raises(JudgePromptError, match=r"lacks \{answer_b\}"):
        read_judge_prompt(text)


def test_each_pair_is_judged_in_both_orders_and_adds_up(run_dir, answered, scripted, progress):
    engine, state, log = judge_with(run_dir, answered, scripted, progress, prefers_strong)
    assert engine.calls == 2 * 6 * 2 and state.done == 24 and state.failed == 0
    orders = {(key[0], key[2], key[4]) for key in log.judgements}
    assert len(orders) == 24 and {key[4] for key in log.judgements} == {MODEL_FIRST, BASELINE_FIRST}
    first = log.judgements[("strong", "base", "q1", 0, MODEL_FIRST)]
    assert first.shown == ("strong", "base") and first.verdict == "A" and first.model_side() == "A"
    swapped = log.judgements[("strong", "base", "q1", 0, BASELINE_FIRST)]
    assert swapped.shown == ("base", "strong") and swapped.verdict == "B" and swapped.model_side() == "A"
    assert first.answer_a == answered.answers[("strong", "q1", 0)].message.id
    assert "理由" in first.message.content  # the raw reply kept

    results = {result.model: result for result in pair_results(log, rounds=200)}
    strong, odd = results["strong"], results["odd"]
    assert (strong.win_rate, strong.ci_low, strong.ci_high) == (1.0, 1.0, 1.0)
    assert (strong.wins, strong.ties, strong.losses, strong.unparseable) == (12, 0, 0, 0)
    assert (strong.both_orders, strong.consistency) == (6, 1.0)
    assert odd.win_rate == 0.0 and odd.unparseable == 2 and odd.items == 5  # item 0: no verdict, not guessed
    assert (odd.losses, odd.both_orders, odd.consistent) == (10, 5, 5)


def test_a_judge_that_always_says_a_is_inconsistent_and_scores_even(run_dir, answered, scripted, progress):
    _, _, log = judge_with(run_dir, answered, scripted, progress, lambda a, b, history: "[[A]]")
    result = next(r for r in pair_results(log) if r.model == "strong")
    assert result.consistency == 0.0 and result.win_rate == 0.5 and (result.wins, result.losses) == (6, 6)


def test_the_interval_holds_the_point_and_is_seeded():
    scores = [1.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    low, high = bootstrap_interval(scores, 1000, seed=3)
    point = sum(scores) / len(scores)
    assert low is not None and high is not None and 0.0 <= low < point < high <= 1.0
    assert bootstrap_interval(scores, 1000, seed=3) == (low, high)
    assert bootstrap_interval([], 1000, seed=3) == (None, None)


def test_a_rerun_judges_only_what_failed_or_was_never_judged(run_dir, answered, scripted, progress):
    def flaky(a, b, history):
        if "问题2" in history[-1]["content"]:
            raise RuntimeError("the judge's server hung up")
        return prefers_strong(a, b, history)

    first, state, log = judge_with(run_dir, answered, scripted, progress, flaky)
    assert first.calls == 24 and state.failed == 4 and len(log.judged()) == 20
    judge_file = log.path
    data = judge_file.read_bytes()
    judge_file.write_bytes(data[: len(data) - 30])  # the last judgement torn, as a kill leaves it
    second, state, log = judge_with(run_dir, answered, scripted, progress, prefers_strong)
    assert second.calls == 5 and state.failed == 0 and len(log.judged()) == 24  # 4 failed + 1 torn
    third, state, _ = judge_with(run_dir, answered, scripted, progress, prefers_strong)
    assert third.calls == 0 and state.done == 24  # nothing left: the judge is not even loaded
    lines = [json.loads(line) for line in judge_file.read_text(encoding="utf-8").splitlines()]
    judged = [
        (r["model"], r["item"], r["order"]) for r in lines if r["type"] == "judgement" and not r["message"].get("error")
    ]
    assert len(judged) == len(set(judged)) == 24  # nothing judged twice


def test_a_partial_run_is_judged_as_far_as_it_got_and_the_rest_later(run_dir, make_settings, scripted, progress):
    def answers_of(name):
        return scripted(lambda history, params: ANSWERS[name])

    settings = make_settings(["base", "strong"], items=4)
    with BatchStore(run_dir, settings) as store:
        run_batch(store, ["base"], load=answers_of, settings_for=preset, progress=progress)
    _, state, log = judge_with(run_dir, read_run(run_dir), scripted, progress, prefers_strong)
    assert state.total == 0 and not log.judgements  # "strong" has not answered yet
    with BatchStore(run_dir, settings) as store:
        run_batch(store, ["strong"], load=answers_of, settings_for=preset, progress=progress)
    engine, state, log = judge_with(run_dir, read_run(run_dir), scripted, progress, prefers_strong)
    assert engine.calls == 8 and len(log.judged()) == 8


def test_a_server_judge_is_asked_concurrently(run_dir, answered, scripted, progress):
    engine = scripted(lambda history, params: "[[C]]", path=None, delay_s=0.03)
    with JudgeStore(run_dir, judge_settings("srv/judge", BUILTIN_PROMPT, {})) as store:
        run_judge(store, answered, "base", load=lambda _: engine, settings_for=preset, progress=progress, concurrency=4)
    assert engine.most_in_flight == 4 and engine.calls == 24


def test_another_judge_or_prompt_judges_into_its_own_file(run_dir, answered, scripted, progress):
    judge_with(run_dir, answered, scripted, progress, prefers_strong)
    other = JudgePrompt("mine", "", "{answer_a} 对 {answer_b}：[[A]] 或 [[B]]")
    engine = scripted(lambda history, params: "[[B]]")
    with JudgeStore(run_dir, judge_settings("judge", other, {})) as store:
        run_judge(store, answered, "base", load=lambda _: engine, settings_for=preset, progress=progress)
    assert engine.calls == 24 and len(list(run_dir.glob("judge-*.jsonl"))) == 2


def test_the_report_shows_win_rates_consistency_and_the_raw_replies(run_dir, answered, scripted, progress):
    judge_with(run_dir, answered, scripted, progress, prefers_strong)
    report = build_report(run_dir, bootstrap_rounds=100)
    data = report_json(report)
    (judge,) = data["judges"]
    results = {result["model"]: result for result in judge["results"]}
    assert results["strong"]["win_rate"] == 1.0 and results["strong"]["ci95"] == [1.0, 1.0]
    assert results["odd"]["unparseable"] == 2 and results["strong"]["consistency"] == 1.0
    assert len(judge["judgements"]) == 24 and judge["judgements"][0]["raw"]
    assert {j["shown"]["A"] for j in judge["judgements"] if j["model"] == "strong"} == {"strong", "base"}
    markdown = render(report, "md")
    assert "## Judge: judge" in markdown and "| strong | base | 100.0% |" in markdown
    assert "unparseable (no verdict mark)" in markdown


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_folds_the_judges_hostile_replies_as_text(run_dir, answered, scripted, progress):
    def hostile(a, b, history):
        return HOSTILE[len(history[-1]["content"]) % len(HOSTILE)] + " [[A]]"

    judge_with(run_dir, answered, scripted, progress, hostile)
    page = render(build_report(run_dir, bootstrap_rounds=10), "html")
    parser = _Tags()
    parser.feed(page)
    assert set(parser.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table"} | {
        "tr",
        "th",
        "td",
        "section",
        "span",
        "div",
        "b",
        "details",
        "summary",
        "nav",  # the table of contents: in-page links only
        "ul",
        "li",
        "a",
    }
    assert all(value.startswith("#") for name, value in parser.attrs if name == "href" and value is not None)
    assert parser.tags.count("style") == 1 and "\x1b" not in page
    assert all(not name.startswith("on") and "javascript:" not in (value or "") for name, value in parser.attrs)
    shown_text = "".join(parser.text)
    assert any(text in shown_text for text in HOSTILE[:4])
    assert page.count('<details class="judgement">') == 24


def test_verdicts_become_judge_votes_once_and_are_left_out_of_the_board_by_default(
    run_dir, answered, scripted, progress, tmp_path
):
    _, _, log = judge_with(run_dir, answered, scripted, progress, prefers_strong)
    battles = judge_battles(log, answered)
    assert len(battles) == 22  # 24 judgements, 2 without a verdict
    with VoteStore.open(tmp_path / "votes.sqlite3") as store:
        assert record_votes(store, battles) == 22
        assert record_votes(store, judge_battles(log, answered)) == 0  # again: nothing new
        stored = store.battles()
    assert {battle.source for battle in stored} == {"judge"}
    judged_first = log.judgements[("strong", "base", "q1", 0, MODEL_FIRST)].message.id
    strong_first = next(battle for battle in stored if battle.id == judged_first)
    assert (strong_first.model_a.id, strong_first.model_b.id, strong_first.verdict) == ("strong", "base", "a")
    assert strong_first.turns_a[-1] == {"role": "assistant", "content": ANSWERS["strong"]}
    outcomes = [battle.outcome() for battle in stored]
    default = select_outcomes(outcomes)
    assert default.outcomes == [] and default.judged == 22
    assert len(select_outcomes(outcomes, include_judge=True).outcomes) == 22


def test_the_report_gives_each_categorys_win_rate(run_dir, make_settings, scripted, progress):
    """Strong beats the base on the maths items (q1, q3, q5) and loses on the others."""
    settings = make_settings(["base", "strong"], items=6)
    items = tuple(replace(item, category="数学" if n % 2 else "闲聊") for n, item in enumerate(settings.items))
    with BatchStore(run_dir, replace(settings, items=items)) as store:
        run_batch(
            store,
            ["base", "strong"],
            load=lambda name: scripted(lambda history, params: ANSWERS[name], path=f"/models/{name}"),
            settings_for=preset,
            progress=progress,
        )

    def maths_to_strong(a, b, history):
        maths = any(f"问题{n}" in history[-1]["content"] for n in (1, 3, 5))
        strong_shown_as = "A" if a == ANSWERS["strong"] else "B"
        other = "B" if strong_shown_as == "A" else "A"
        return f"[[{strong_shown_as if maths else other}]]"

    judge_with(run_dir, read_run(run_dir), scripted, progress, maths_to_strong)
    report = build_report(run_dir, bootstrap_rounds=10)
    rates = {c.category: {m.model: m.win_rates for m in c.models} for c in report.categories}
    assert rates == {"闲聊": {"base": (None,), "strong": (0.0,)}, "数学": {"base": (None,), "strong": (1.0,)}}
    assert "| 数学 | strong | 3 | 3 | " in render(report, "md") and "| 100.0% |" in render(report, "md")
