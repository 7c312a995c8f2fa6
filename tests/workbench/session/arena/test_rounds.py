"""Arena rounds: which pair meets, and what a vote on it records."""

from __future__ import annotations

import random

import pytest

from zhbench.workbench.session.arena.leaks import DEFAULT_MAKER_NAMES
from zhbench.workbench.session.arena.rounds import ArenaError, Contender, battle_of_round, draw_pair
from zhbench.workbench.session.panes import PaneState

POOL = [Contender(f"/models/{name}") for name in ("qwen", "glm", "yi")]


def test_a_pair_is_two_different_models_with_both_sides_drawn():
    rng = random.Random(0)
    pairs = [draw_pair(POOL, rng) for _ in range(300)]
    assert all(a.spec != b.spec for a, b in pairs)
    assert {a.spec for a, _ in pairs} == {"/models/qwen", "/models/glm", "/models/yi"}  # every model gets side A
    assert set(pairs) == {(a, b) for a in POOL for b in POOL if a != b}


def test_a_new_round_is_not_the_last_pair_again_when_there_is_another():
    rng = random.Random(1)
    last = (POOL[0], POOL[1])
    for _ in range(100):
        a, b = draw_pair(POOL, rng, last)
        assert {a, b} != set(last)
    # with two models there is no other pair: the same two meet again, sides drawn anew
    two = POOL[:2]
    assert set(draw_pair(two, rng, (two[0], two[1]))) == set(two)


def test_a_pool_without_two_models_is_refused():
    with pytest.raises(ArenaError, match="needs two different models"):
        draw_pair([POOL[0], POOL[0]], random.Random(0))


def loaded_pane(name, engine, reply, label="qwen"):
    state = PaneState(name, engine=engine, params=engine.presets()[next(iter(engine.presets()))], label=label)
    state.fingerprint = f"sha256:{label}"
    state.history = [{"role": "user", "content": "你是谁？"}, {"role": "assistant", "content": reply}]
    return state


def test_a_vote_records_both_sides_and_flags_a_reply_that_names_its_maker(engine_for):
    engine = engine_for("gpt2-dialogbot")
    plain = (loaded_pane("a", engine, "我是一个助手。"), loaded_pane("b", engine, "你好！", label="glm"))
    battle = battle_of_round(plain, "tie", anonymous=True, maker_names=DEFAULT_MAKER_NAMES)
    assert (battle.model_a.id, battle.model_b.id, battle.verdict) == ("qwen", "glm", "tie")
    assert battle.model_b.fingerprint == "sha256:glm"  # kept beside the id
    assert battle.model_a.family == "gpt2-dialogbot" and battle.model_a.path == engine.describe().path
    assert battle.turns_b[-1]["content"] == "你好！" and not battle.leaked

    leaky = (loaded_pane("a", engine, "我是通义千问，由阿里云开发。"), plain[1])
    assert battle_of_round(leaky, "a", anonymous=True, maker_names=DEFAULT_MAKER_NAMES).leaked


def test_nothing_to_vote_on_before_both_have_answered(engine_for):
    engine = engine_for("gpt2-dialogbot")
    waiting = PaneState("b", engine=engine, params=engine.presets()[next(iter(engine.presets()))])
    waiting.history = [{"role": "user", "content": "你是谁？"}]
    with pytest.raises(ArenaError, match="nothing to vote on yet"):
        battle_of_round(
            (loaded_pane("a", engine, "好"), waiting),
            "a",
            anonymous=True,
            maker_names=DEFAULT_MAKER_NAMES,
        )
