"""PromptCLUE-base-v1-5 (ClueAI): single-turn task prompts on a T5-base.

Follows the HF card of ClueAI/PromptCLUE-base-v1-5 (and clue-ai/PromptCLUE@3db4b6b README): its
``preprocess``/``postprocess`` and its ``answer(sample=False)`` / ``answer(sample=True, top_p=0.8)`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from zhbench.engines.api import FamilySpec
from zhbench.engines.families.clue_t5.common import ClueT5Engine
from zhbench.engines.types import GenerationParams, Message, choice_field

#: the card's task templates; the user's message fills ``{text}``
TASK_TEMPLATES: dict[str, str] = {
    "qa": "问答：\n问题：{text}\n答案：",
    "knowledge_qa": "根据问题给出答案：\n问题：{text}\n答案：",
    "classify": "分类任务：\n{text}\n答案：",
    "intent": "意图分类：\n{text}\n答案：",
    "sentiment": "情感分析：\n{text}\n答案：",
    "reading": "阅读文章，给出答案：\n段落：\n{text}\n答案：",
    "summarize": "为下面的文章生成摘要：\n{text}\n答案：",
    "translate_en": "翻译成英文：\n{text}\n答案：",
    "translate_zh": "翻译成中文：\n{text}\n答案：",
    "extract": "信息抽取：\n{text}\n答案：",
    "keywords": "抽取关键词：\n{text}\n关键词：",
    "paraphrase": "生成与下列文字相同意思的句子：\n{text}\n答案：",
    "correct": "文本纠错：\n{text}\n答案：",
    "question_gen": "问题生成：\n{text}\n答案：",
    "article": "根据标题生成文章：\n标题：{text}\n答案：",
    "raw": "{text}",
}


@dataclass(frozen=True)
class PromptClueParams(GenerationParams):
    """PromptCLUE's settings add the task template (a key of ``TASK_TEMPLATES``)."""

    task: str = choice_field("qa", TASK_TEMPLATES)

    prompt_settings: ClassVar[frozenset[str]] = frozenset({"task"})


def promptclue_prompt(message: str, task: str = "qa") -> str:
    """The task template around the user's message (PromptCLUE is single-turn: history is not used)."""
    return TASK_TEMPLATES[task].replace("{text}", message)


def promptclue_preprocess(text: str) -> str:
    return text.replace("\n", "_")


def promptclue_postprocess(text: str) -> str:
    # As upstream: an underscore the model writes also comes back as a newline.
    return text.replace("_", "\n")


def promptclue_defaults() -> PromptClueParams:
    """``answer(sample=False)``: beam search, 4 beams, length penalty 0.6, ``max_length=128``
    (which counts the decoder start token: 127 new tokens)."""
    return PromptClueParams(greedy=True, num_beams=4, length_penalty=0.6, max_new_tokens=127)


def promptclue_sampling() -> PromptClueParams:
    """``answer(sample=True, top_p=0.8)``: ``max_length=64``; top_k 50 is ``generate()``'s inherited default."""
    return PromptClueParams(top_p=0.8, top_k=50, max_new_tokens=63)


class PromptClueEngine(ClueT5Engine):
    family = "promptclue"

    preprocess = staticmethod(promptclue_preprocess)
    postprocess = staticmethod(promptclue_postprocess)

    def default_params(self) -> GenerationParams:
        return promptclue_defaults()

    def presets(self) -> dict[str, GenerationParams]:
        return {"beam": promptclue_defaults(), "sample": promptclue_sampling()}

    def prompt_text(self, history: Sequence[Message], params: GenerationParams) -> str:
        task = params.task if isinstance(params, PromptClueParams) else "qa"
        return promptclue_prompt(history[-1]["content"], task)


FAMILY = FamilySpec(
    name=PromptClueEngine.family,
    summary="ClueAI/PromptCLUE-base-v1-5: single-turn task prompts on a T5-base",
    matches_layout=PromptClueEngine.matches_layout,
    load=PromptClueEngine.from_options,
    name_hints=("promptclue",),
    standin="zhbench.engines.standins.clue_t5:write_promptclue_standin",
)
