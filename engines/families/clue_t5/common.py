"""What ChatYuan and PromptCLUE share: ClueAI's T5 checkpoints, escaped text, a 768-token input.

Both model cards (clue-ai/ChatYuan README-v1.MD, clue-ai/PromptCLUE README) load ``T5Tokenizer`` and
``T5ForConditionalGeneration``, escape newlines before encoding (SentencePiece would turn them into
spaces) and encode with ``truncation=True, max_length=768``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

from zhbench.engines.context import fit_messages, keep_tail_that_fits
from zhbench.engines.local.checkpoints import config_model_type
from zhbench.engines.local.transformers import T5Engine
from zhbench.engines.types import ContextFit, GenerationParams, Message, Prompt

#: the cards' ``max_length=768`` on the encoder input, ``</s>`` included
MAX_INPUT_TOKENS = 768


class ClueT5Engine(T5Engine):
    """A ClueAI T5 model; a family adds its prompt text and its escaping."""

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        return (path / "spiece.model").is_file() and config_model_type(path) == "t5"

    @staticmethod
    @abstractmethod
    def preprocess(text: str) -> str:
        """Escape text before it is encoded, as the card's ``preprocess``."""

    @staticmethod
    @abstractmethod
    def postprocess(text: str) -> str:
        """Undo the escaping in decoded text, as the card's ``postprocess``."""

    @abstractmethod
    def prompt_text(self, history: Sequence[Message], params: GenerationParams) -> str:
        """The prompt before escaping."""

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        """Deviation: the cards cut the right end of an input past 768 tokens, losing the newest
        question and the answer cue; here the oldest turns go first, then the start of the newest message."""

        def fits(messages: Sequence[Message]) -> bool:
            return len(self._encode(self.prompt_text(messages, params))) <= MAX_INPUT_TOKENS

        kept = fit_messages(history, fits)
        dropped, truncated = len(history) - len(kept), not fits(kept)
        if truncated:
            older, last = kept[:-1], kept[-1]
            content = keep_tail_that_fits(last["content"], lambda c: fits([*older, {"role": "user", "content": c}]))
            kept = [*older, {"role": "user", "content": content}]
        raw_text = self.prompt_text(kept, params)
        fit = ContextFit(MAX_INPUT_TOKENS, dropped, truncated)
        return Prompt(self.preprocess(raw_text), self._encode(raw_text), fit=fit)

    def _encode(self, raw_text: str) -> list[int]:
        return list(self.tokenizer(self.preprocess(raw_text)).input_ids)

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return self.postprocess(self.decode_text(output_ids, skip_special_tokens=True))
