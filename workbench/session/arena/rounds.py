"""Rounds of the blind arena: which two models meet, and the battle a vote on them records.

Headless: the arena screen draws a pair, loads it into panes A and B under the names "Model A" and
"Model B", and after the vote turns the panes' conversations into a ``Battle`` for the vote store.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhbench.engines.remote.server import RemoteServer
from zhbench.engines.types import Message
from zhbench.workbench.session.arena.votes import Battle, BattleModel, Verdict, new_battle
from zhbench.workbench.session.panes import PaneState

#: what each vote key means, in the order the keys are offered
VERDICT_NAMES: dict[Verdict, str] = {"a": "A is better", "b": "B is better", "tie": "a tie", "bothbad": "both are bad"}
#: the arena's own decoding, the same for both sides whatever their families: sampled (one beam, so both
#: stream), at the temperature and top_p FastChat's arena asks of its models, to the same length, with every
#: other filter and penalty a family may start with switched off (a family's upstream repetition penalty of
#: 1.1 or llama.cpp's min_p of 0.05 would otherwise tilt one side)
ARENA_DECODING: dict[str, object] = {
    "greedy": False,
    "num_beams": 1,
    "temperature": 0.7,
    "top_p": 1.0,
    "max_new_tokens": 512,
    "top_k": 0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "min_p": 0.0,  # llama.cpp's (the gguf family's); a family without it has no such filter to switch off
}


def decoding_text(decoding: Mapping[str, object]) -> str:
    """The arena's decoding as its header says it, the same line on both sides."""
    if not decoding:
        return "each model at its own upstream decoding (not the same for both)"
    return (
        f"both sampled alike: temp {decoding['temperature']:g} · top_p {decoding['top_p']:g}"
        f" · max {decoding['max_new_tokens']} tokens"
    )


def blind_stats(stats: Mapping[str, Any] | None) -> str:
    """A reply's stats line before the vote: its timing only. Token counts, speed in tokens, the context
    window, the seed and why it stopped tell a tokenizer, a family or a size apart; they show after the vote."""
    if not stats:
        return "no stats"
    ttft = stats.get("ttft_s")
    first = f"first after {ttft:.2f}s" if isinstance(ttft, (int, float)) else "no token"
    total = stats.get("total_s")
    return f"{first} · {total:.2f}s in all" if isinstance(total, (int, float)) else first


class ArenaError(ValueError):
    """A round that cannot be drawn or voted on, with what to do about it."""


@dataclass(frozen=True)
class Contender:
    """A model in the arena's pool: what loading takes. The name revealed after the vote is the loaded
    model's id (``identity.model_identity``), the same however the pool named it."""

    spec: str


def draw_pair(
    pool: Sequence[Contender], rng: random.Random, last: tuple[Contender, Contender] | None = None
) -> tuple[Contender, Contender]:
    """Two different models of ``pool``, their sides at random. With three or more models, not the pair of
    the round before (in either order), so that a new round is a new comparison."""
    distinct = list(dict.fromkeys(pool))
    if len({c.spec for c in distinct}) < 2:
        raise ArenaError(f"the arena needs two different models; its pool has {len(distinct)}")
    pairs = [(a, b) for a in distinct for b in distinct if a.spec != b.spec]
    if last is not None and len(distinct) > 2:
        pairs = [pair for pair in pairs if {pair[0].spec, pair[1].spec} != {last[0].spec, last[1].spec}]
    return rng.choice(pairs)


def pair_fit_problem(
    pair: tuple[Contender, Contender],
    *,
    device: str | None,
    servers: Mapping[str, RemoteServer],
    freed_bytes: int = 0,
) -> str | None:
    """Why the two local models of ``pair`` would not fit in memory together (with ``freed_bytes`` given back
    by the pair before), or None. Says sizes, never names: the round is still blind."""
    from zhbench.engines.errors import ZhbenchError
    from zhbench.plain.byte_sizes import format_bytes
    from zhbench.workbench.session.fit_check import check_fit
    from zhbench.workbench.session.model_specs import server_model

    needed, free = 0, None
    for contender in pair:
        if server_model(contender.spec, servers) is not None:
            continue  # on its server: it takes no memory here
        try:
            verdict = check_fit(contender.spec, device=device)
        except (ZhbenchError, OSError, ValueError):
            continue  # files the estimate cannot read: the load itself will say what is wrong
        needed += verdict.need.total_bytes
        free = verdict.free_bytes
    if free is None or needed <= free + freed_bytes:
        return None
    return f"the pair needs about {format_bytes(needed)} together and {format_bytes(free + freed_bytes)} is free"


def conversation(state: PaneState) -> list[Message]:
    """The pane's whole conversation: the user's turns and the model's replies, as fed back to it."""
    return list(state.history)


def battle_model(state: PaneState) -> BattleModel:
    """One side as the vote store keeps it: the model's id and fingerprint, and enough to run it again the
    same way."""
    if state.engine is None or state.params is None:
        raise ArenaError(f"pane {state.name.upper()} has no model")
    info = state.engine.describe()
    server = info.details.get("base_url")
    return BattleModel(
        id=state.label or "?",
        fingerprint=state.fingerprint,
        family=info.family,
        path=info.path,
        server=server if isinstance(server, str) else None,
        params=state.params.to_dict(),
        seed=state.params.seed,
    )


def battle_of_round(
    panes: tuple[PaneState, PaneState],
    verdict: Verdict,
    *,
    anonymous: bool,
    maker_names: Sequence[str],
) -> Battle:
    """The battle a vote on this round records; ``ArenaError`` when there is nothing to vote on yet."""
    for state in panes:
        if state.busy or state.loading:
            raise ArenaError(f"pane {state.name.upper()} has not finished: wait for it, or stop it (Esc)")
        if not any(message["role"] == "assistant" for message in state.history):
            raise ArenaError("nothing to vote on yet: send a message, and vote when both have answered")
    return new_battle(
        battle_model(panes[0]),
        battle_model(panes[1]),
        verdict,
        conversation(panes[0]),
        conversation(panes[1]),
        anonymous=anonymous,
        maker_names=maker_names,
    )
