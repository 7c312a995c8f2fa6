"""Battles to store and rank, built the way the arena screen builds them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zhbench.workbench.session.arena.votes import Battle, BattleModel, Verdict, new_battle


@pytest.fixture
def make_battle() -> Callable[..., Battle]:
    """``make_battle(model_a, model_b, verdict, reply_a=..., reply_b=..., **options)``: one question, one
    reply per side, voted now."""

    def make(
        model_a: str,
        model_b: str,
        verdict: Verdict,
        reply_a: str = "你好！",
        reply_b: str = "您好。",
        **options: object,
    ) -> Battle:
        question = {"role": "user", "content": "你是谁？"}
        return new_battle(
            BattleModel(model_a, "chat-template", path=f"/models/{model_a}", params={"temperature": 0.7}, seed=1),
            BattleModel(model_b, "openai-compat", server="http://127.0.0.1:8000/v1"),
            verdict,
            [question, {"role": "assistant", "content": reply_a}],
            [question, {"role": "assistant", "content": reply_b}],
            **options,
        )

    return make
