"""The blind arena in the real app: nothing names a model before the vote, the vote is stored, then revealed."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, replies_done, wait_until

from zhbench.widgets.chat_pane import ChatPane
from zhbench.widgets.composer import Composer
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.screens.arena import ArenaScreen
from zhbench.workbench.screens.leaderboard import LeaderboardScreen
from zhbench.workbench.session.arena.rounds import ARENA_DECODING, Contender
from zhbench.workbench.session.arena.votes import BattleModel, VoteStore, new_battle, votes_path

SIZE = (150, 40)


def screen_text(app: ZhbenchApp) -> str:
    """Every character on screen (the screenshot's text), and every notification raised."""
    svg = app.export_screenshot()
    drawn = html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg))).replace("\xa0", " ")
    return drawn + "\n".join(notification.message for notification in app._notifications)


def title(app: ZhbenchApp, pane: str) -> str:
    return str(app.screen.query_one(f"#pane-{pane}", ChatPane).border_title)


async def test_a_blind_round_names_no_model_until_the_vote_then_stores_it_and_reveals(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    pool = [
        Contender(str(standin_dir("gpt2-dialogbot"))),
        Contender(str(standin_dir("dialogpt-zh"))),
    ]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await models_loaded_in(arena)
        secrets = ("dialogbot", "dialogpt", "gpt2", "tiny-", str(Path(pool[0].spec).parent))
        for name in "ab":
            assert title(app, name) == f"{name.upper()} · Model {name.upper()}"

        await pilot.press("f5")  # nothing to vote on yet
        assert not votes_path().exists()

        composer = arena.query_one(Composer)
        composer.focus()
        composer.text = "你好，介绍一下你自己"
        await pilot.press("enter")
        await wait_until(lambda: all(not p.busy for p in arena.bench.panes) and arena.bench.pane("b").history)
        await pilot.pause()
        shown = screen_text(app)
        assert not [secret for secret in secrets if secret in shown], shown

        await pilot.press("f6")  # B is better (the composer has the focus: its own F6 does not win)
        with VoteStore.open() as store:
            (battle,) = store.battles()
        assert battle.verdict == "b" and battle.anonymous and battle.source == "human"
        # each side named by its model's id (its folder's name here), its fingerprint beside it
        assert {battle.model_a.id, battle.model_b.id} == {"tiny-gpt2-dialogbot", "tiny-dialogpt-zh"}
        assert battle.model_a.id == Path(arena.pair[0].spec).name  # sides as drawn
        assert battle.model_a.fingerprint and battle.model_a.fingerprint.startswith("sha256:")
        assert [m["role"] for m in battle.turns_a] == ["user", "assistant"]
        assert battle.turns_a[0]["content"] == "你好，介绍一下你自己"
        assert battle.model_a.family in ("gpt2-dialogbot", "dialogpt-zh") and battle.model_a.path
        # revealed: each header names its model now
        assert (title(app, "a"), title(app, "b")) == (f"A · {battle.model_a.id}", f"B · {battle.model_b.id}")

        await pilot.press("f5")  # one vote per round
        with VoteStore.open() as store:
            assert len(store.battles()) == 1

        await pilot.press("ctrl+n")  # the next round: unloaded, drawn again, blind again
        await models_loaded_in(arena)
        assert title(app, "a") == "A · Model A" and not arena.revealed
        assert all(not p.history for p in arena.bench.panes)

        await pilot.press("ctrl+b")
        assert not isinstance(app.screen, ArenaScreen)


async def models_loaded_in(arena: ArenaScreen) -> None:
    await wait_until(
        lambda: all(p.engine is not None and p.loading is None for p in arena.bench.panes), what="both models"
    )


async def test_the_arena_refuses_a_pool_of_one_model(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        app.open_arena([Contender(str(standin_dir("gpt2-dialogbot")))])
        await pilot.pause()
        assert not isinstance(app.screen, ArenaScreen)
        assert "needs two models" in screen_text(app)
        await replies_done(app)


def shown(app: ZhbenchApp, selector: str) -> str:
    """The text of a part of the leaderboard screen, once it is up."""
    if not isinstance(app.screen, LeaderboardScreen) or not app.screen.query(selector):
        return ""
    return str(app.screen.query_one(selector).content)


def vote(store: VoteStore, winner: str, loser: str, *, anonymous: bool = True) -> None:
    turns = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    models = BattleModel(winner, "chat-template"), BattleModel(loser, "chat-template")
    store.record(new_battle(*models, "a", turns, turns, anonymous=anonymous))


async def test_the_leaderboard_screen_ranks_the_stored_votes_and_counts_named_ones_on_request(
    make_app: Callable[..., ZhbenchApp],
) -> None:
    with VoteStore.open() as store:
        for _ in range(6):
            vote(store, "qwen3", "glm4")
        for _ in range(3):
            vote(store, "glm4", "yi")
        vote(store, "glm4", "qwen3")  # no model won (or lost) every battle: each has a finite rating
        vote(store, "yi", "glm4")
        vote(store, "yi", "qwen3", anonymous=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.open_leaderboard()
        await wait_until(lambda: "battles from" in shown(app, "#board-table"))
        table = shown(app, "#board-table")
        rows = [line for line in table.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
        assert [row.split()[1] for row in rows] == ["qwen3", "glm4", "yi"]  # best first
        assert table.startswith("11 battles") and "1 cast knowing the models left out" in table
        assert all("█" in row for row in rows)  # each interval drawn as a bar
        matrix = shown(app, "#board-matrix")
        assert "0.86" in matrix and "qwen3" in matrix

        await pilot.press("n")  # count the named vote too
        await wait_until(lambda: shown(app, "#board-table").startswith("12 battles"))
        await pilot.press("escape")
        assert not isinstance(app.screen, LeaderboardScreen)


async def test_a_named_vote_on_the_bench_is_stored_as_not_anonymous(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot")), "b": str(standin_dir("dialogpt-zh"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a", "b")
        app.bench_screen.action_vote_named("tie")  # before any reply: nothing to vote on
        assert not votes_path().exists()
        composer = app.query_one(Composer)
        composer.text = "你好"
        await pilot.press("enter")
        await replies_done(app)
        app.bench_screen.action_vote_named("a")
        with VoteStore.open() as store:
            (battle,) = store.battles()
        assert battle.verdict == "a" and not battle.anonymous
        assert battle.model_a.path == str(standin_dir("gpt2-dialogbot"))


async def test_a_pair_that_does_not_fit_in_memory_together_is_not_loaded(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], monkeypatch
) -> None:
    monkeypatch.setattr("zhbench.workbench.session.fit_check.free_memory", lambda nvml=None: {"cpu": 50_000_000})
    pool = [
        Contender(str(standin_dir("gpt2-dialogbot"))),
        Contender(str(standin_dir("chatyuan"))),
    ]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        await wait_until(lambda: any("No round" in n.message for n in app._notifications), what="the refusal")
        await pilot.pause()
        (refusal,) = [n.message for n in app._notifications if "No round" in n.message]
        assert "no pair drawn fits in memory" in refusal and "MB is free" in refusal.replace("MiB", "MB")
        assert "dialogbot" not in refusal and "chatyuan" not in refusal  # sizes, not names: still blind
        assert all(state.engine is None and state.loading is None for state in app.screen.bench.panes)


async def test_a_batch_run_is_reviewed_blind_item_by_item_and_each_vote_stored(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    from zhbench.workbench.cli import main
    from zhbench.workbench.screens.review import ReviewScreen

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("你好\n今天天气怎么样？\n", encoding="utf-8")
    models = [str(standin_dir("gpt2-dialogbot")), str(standin_dir("dialogpt-zh"))]
    run = tmp_path / "run"
    argv = ["batch", str(prompts), "--out", str(run), "--seed", "1", "--set", "max_new_tokens=6"]
    assert main([*argv, "--model", models[0], "--model", models[1]]) == 0

    app = make_app(review=run)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ReviewScreen) and app.screen.pair is not None, what="review")
        await pilot.pause()
        shown = screen_text(app)
        assert "item 1 of 2" in shown and title(app, "a") == "A · Model A"
        assert not [name for name in ("gpt2", "dialogpt", str(tmp_path)) if name in shown], shown
        assert "tokens" not in shown and "ctx" not in shown and " in all" in shown  # a reply's timing only
        first = app.screen.pair
        await pilot.press("f7")  # a tie
        await pilot.press("f5")  # one vote per item
        with VoteStore.open() as store:
            (battle,) = store.battles()
        assert battle.verdict == "tie" and battle.anonymous
        # named as the arena names them (not by the paths the run was given), fingerprints beside them
        assert (battle.model_a.id, battle.model_b.id) == (first.answer_a.message.model, first.answer_b.message.model)
        assert {battle.model_a.id, battle.model_b.id} == {"tiny-gpt2-dialogbot", "tiny-dialogpt-zh"}
        assert battle.model_a.fingerprint and battle.model_a.fingerprint.startswith("sha256:")
        assert battle.turns_a[-1] == {"role": "assistant", "content": first.answer_a.message.content}
        assert title(app, "a") == f"A · {battle.model_a.id}"  # revealed, every figure of the stats too
        await pilot.pause()
        assert "tokens" in screen_text(app)
        await pilot.press("ctrl+n")
        assert "item 2 of 2" in screen_text(app) and title(app, "b") == "B · Model B"


def pane_chrome(app: ZhbenchApp, pane: str) -> str:
    """Everything pane ``pane`` shows but the replies' text: its title, header and status, each message, and
    each reply's lines with its text taken out; its own letter and figures of time written alike."""
    widget = app.screen.query_one(f"#pane-{pane}", ChatPane)
    parts = [str(widget.border_title)]
    parts += [str(static.content) for static in widget.query(".pane-header, .pane-status")]
    for view in widget.query("MessageView, ReplyView"):
        text = str(view.content)
        parts.append(text.replace(view.text, "<reply>", 1) if "assistant" in view.classes else text)
    chrome = "\n".join(parts).replace(f"Model {pane.upper()}", "Model X").replace(f"{pane.upper()} · ", "X · ")
    return re.sub(r"\d+\.\d+s", "Ns", chrome)


async def test_before_the_vote_the_two_sides_differ_only_in_their_replies_and_their_timing(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    # two families with different context windows, default decodings (beam sampling, top-k sampling) and sizes
    pool = [Contender(str(standin_dir("eva2"))), Contender(str(standin_dir("gpt2-dialogbot")))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await models_loaded_in(arena)
        composer = arena.query_one(Composer)
        composer.text = "你好，介绍一下你自己"
        await pilot.press("enter")
        await wait_until(lambda: all(not p.busy for p in arena.bench.panes) and arena.bench.pane("b").history)
        await wait_until(lambda: "RAM" in str(arena.query_one("#meter").content), what="a memory reading")
        await pilot.pause()

        assert pane_chrome(app, "a") == pane_chrome(app, "b")
        # both answered with the arena's own preset, as both headers say
        params = [arena.bench.pane(name).params for name in "ab"]
        assert all(p is not None and not p.greedy and p.num_beams == 1 and p.temperature == 0.7 for p in params)
        assert "both sampled alike: temp 0.7" in pane_chrome(app, "a")
        shown = screen_text(app)
        secrets = ("eva", "dialogbot", "gpt2", "tiny-", str(Path(pool[0].spec).parent), "ctx ", "tokens ·", "seed")
        assert not [secret for secret in secrets if secret in shown], shown
        meter = str(arena.query_one("#meter").content)
        assert "A:" not in meter and "B:" not in meter  # the total only

        await pilot.press("f7")  # after the vote everything shows
        await wait_until(lambda: "A:" in str(arena.query_one("#meter").content), what="the sides' memory")
        assert "tokens" in pane_chrome(app, "a") and arena.pair is not None
        assert pane_chrome(app, "a") != pane_chrome(app, "b")


async def test_a_model_that_cannot_take_the_arena_decoding_leaves_the_pool_unnamed(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], monkeypatch
) -> None:
    # a decoding no model takes (every family refuses a negative temperature), as a beam-only family would
    # refuse the arena's sampling
    refused = {**ARENA_DECODING, "temperature": -1.0}
    monkeypatch.setattr("zhbench.workbench.session.arena.rounds.ARENA_DECODING", refused)
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(standin_dir("dialogpt-zh")))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await wait_until(lambda: arena.unpaired == {c.spec for c in pool}, what="both models to leave the pool")
        await wait_until(lambda: any("No round" in n.message for n in app._notifications), what="no round")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any("cannot decode as the arena's preset asks" in message for message in said)
        assert not [m for m in said if "gpt2" in m or "dialogpt" in m or "temperature" in m]  # still blind


async def test_a_model_that_does_not_load_leaves_the_pool_without_naming_it(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path], tmp_path: Path
) -> None:
    broken = tmp_path / "secret-name-7b"
    broken.mkdir()
    (broken / "config.json").write_text("{cut mid-write", encoding="utf-8")
    pool = [Contender(str(standin_dir("gpt2-dialogbot"))), Contender(str(broken))]
    app = make_app(arena_pool=pool)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ArenaScreen), what="the arena")
        arena = app.screen
        assert isinstance(arena, ArenaScreen)
        await wait_until(lambda: str(broken) in arena.unpaired, what="the broken model to leave the pool")
        await pilot.pause()
        said = screen_text(app)
        assert "could not be loaded, so it leaves the pool" in said
        assert "secret-name" not in said and "config.json" not in said
