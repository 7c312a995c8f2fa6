"""chat-DialoGPT-small-zh (liam168): DialoGPT-small with GPT-2's byte-level BPE.

Follows the loop of the model card (HF liam168/chat-DialoGPT-small-zh, README "How to use"):
``u1<eos>r1<eos>u2<eos>…``, greedy ``generate(max_length=1000)``, stop at ``<|endoftext|>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.api import FamilySpec
from zhbench.engines.context import FittedIds, fit_newest_in_steps, prompt_budget
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.local.checkpoints import config_model_type
from zhbench.engines.local.transformers import CausalLMEngine, checked_tokenizer
from zhbench.engines.types import GenerationParams, Message, Prompt

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: the card's ``max_length=1000``: prompt and reply together
MAX_TOTAL_LENGTH = 1000


def dialogpt_defaults() -> GenerationParams:
    """Greedy, as the card calls ``generate`` with no sampling arguments; the reply may fill what is
    left of the card's 1000-token total."""
    return GenerationParams(greedy=True, max_new_tokens=MAX_TOTAL_LENGTH)


def dialogpt_input_ids(utterances: Sequence[Sequence[int]], *, eos_id: int, max_prompt_tokens: int) -> FittedIds:
    """Every utterance followed by ``<eos>``, oldest first.

    Deviation: upstream lets the history grow until GPT-2 runs out of positions and crashes; here the
    oldest exchanges (a user utterance and the reply after it) are dropped, about half the budget at
    a time (``fit_newest_in_steps``), so that between two drops every prompt extends the one before and
    the engine reuses its key/value cache instead of encoding the history again. If the newest utterance
    alone does not fit, its last tokens are kept.
    """
    count = len(utterances)
    start = fit_newest_in_steps(
        [len(u) + 1 for u in utterances],
        max_prompt_tokens,
        # the history alternates and ends with the user: a window starts at a user turn, as in training
        may_start=lambda index: index == 0 or (count - index) % 2 == 1,
    )
    ids: list[int] = []
    for utterance in utterances[start:]:
        ids += [*utterance, eos_id]
    if len(ids) <= max_prompt_tokens:
        return FittedIds(ids, start)
    ids = [*list(utterances[-1])[-(max_prompt_tokens - 1) :], eos_id] if max_prompt_tokens > 1 else [eos_id]
    return FittedIds(ids, count - 1, truncated=True)


class DialogptZhEngine(CausalLMEngine):
    family = "dialogpt-zh"
    model_class_name = "GPT2LMHeadModel"

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        has_bpe = (path / "vocab.json").is_file() or (path / "tokenizer.json").is_file()
        return has_bpe and config_model_type(path) == "gpt2"

    @classmethod
    def load_tokenizer(cls, folder: Path) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        has_files = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
        if not has_files and not (folder / "tokenizer.json").is_file():
            missing = "merges.txt" if (folder / "vocab.json").is_file() else "vocab.json"
            raise ModelLoadError(folder, f"missing tokenizer file {missing}")
        return checked_tokenizer(AutoTokenizer, folder)

    @property
    def max_positions(self) -> int:
        return min(int(self.model.config.n_positions), MAX_TOTAL_LENGTH)

    def default_params(self) -> GenerationParams:
        return dialogpt_defaults()

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        eos = self.tokenizer.eos_token_id
        fitted = dialogpt_input_ids(
            [self.utterance_ids(m) for m in history],
            eos_id=eos,
            max_prompt_tokens=prompt_budget(self.max_positions, params.max_new_tokens),
        )
        return Prompt(self.decode_text(fitted.ids), fitted.ids, fit=fitted.fit(self.max_positions))

    def reply_end_ids(self) -> frozenset[int]:
        return frozenset({self.tokenizer.eos_token_id})

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return self.decode_text(output_ids, skip_special_tokens=True)


FAMILY = FamilySpec(
    name=DialogptZhEngine.family,
    summary="liam168/chat-DialoGPT-small-zh: DialoGPT-small with GPT-2's byte-level BPE",
    matches_layout=DialogptZhEngine.matches_layout,
    load=DialogptZhEngine.from_options,
    name_hints=("dialogpt",),
    standin="zhbench.engines.standins.gpt2:write_dialogpt_standin",
)
