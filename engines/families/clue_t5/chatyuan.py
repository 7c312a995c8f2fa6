"""ChatYuan-large-v1 (ClueAI): multi-turn ``用户：…\n小元：…`` prompts on a T5-large.

Follows clue-ai/ChatYuan@86d6b3f ``README-v1.MD`` (the HF card of ClueAI/ChatYuan-large-v1): its
``preprocess``/``postprocess``, its multi-turn ``context`` and its ``answer(sample=True)`` call.
"""

from __future__ import annotations

from collections.abc import Sequence

from zhbench.engines.api import FamilySpec
from zhbench.engines.families.clue_t5.common import ClueT5Engine
from zhbench.engines.types import GenerationParams, Message

USER_CUE = "用户："
BOT_CUE = "小元："


def chatyuan_prompt(history: Sequence[Message]) -> str:
    """``用户：u1\\n小元：a1\\n…\\n用户：q\\n小元：``.

    Deviation: the card's multi-turn code puts a ``\\n`` before the first turn when there is no
    history; here the first turn has none (as the single-turn code and the v2 app).
    """
    turns = [(USER_CUE if m["role"] == "user" else BOT_CUE) + m["content"] for m in history]
    return "\n".join(turns) + "\n" + BOT_CUE


def chatyuan_preprocess(text: str) -> str:
    return text.replace("\n", "\\n").replace("\t", "\\t")


def chatyuan_postprocess(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def chatyuan_defaults() -> GenerationParams:
    """``answer(sample=True)``: top_p 1, temperature 0.7, no repeated 3-grams, 512 new tokens.

    top_k 50 is not in the card: it is ``generate()``'s default, which the card's call inherits.
    """
    return GenerationParams(temperature=0.7, top_p=1.0, top_k=50, no_repeat_ngram_size=3, max_new_tokens=512)


class ChatYuanEngine(ClueT5Engine):
    family = "chatyuan"

    preprocess = staticmethod(chatyuan_preprocess)
    postprocess = staticmethod(chatyuan_postprocess)

    def default_params(self) -> GenerationParams:
        return chatyuan_defaults()

    def presets(self) -> dict[str, GenerationParams]:
        """The card's two branches: ``sample=True`` (default) and ``sample=False`` (greedy, 512 tokens)."""
        return {
            "sample": chatyuan_defaults(),
            "greedy": GenerationParams(greedy=True, length_penalty=0.6, max_new_tokens=512),
        }

    def prompt_text(self, history: Sequence[Message], params: GenerationParams) -> str:
        return chatyuan_prompt(history)

    def streamable(self, text: str) -> str:
        # A trailing backslash may be the first half of an escaped newline or tab.
        return text[:-1] if text.endswith("\\") else text


FAMILY = FamilySpec(
    name=ChatYuanEngine.family,
    summary="ClueAI/ChatYuan-large-v1: multi-turn 用户/小元 prompts on a T5-large",
    matches_layout=ChatYuanEngine.matches_layout,
    load=ChatYuanEngine.from_options,
    name_hints=("chatyuan",),
    standin="zhbench.engines.standins.clue_t5:write_chatyuan_standin",
)
