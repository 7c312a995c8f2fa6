"""gpt2-dialogbot-base-chinese (shibing624): GPT-2 over a BERT-Chinese vocabulary.

Follows shibing624/dialogbot@13900f1 ``dialogbot/gpt/interact.py`` (``Inference.predict``, its
``top_k_top_p_filtering``) and the defaults of ``dialogbot/gpt/gptbot.py`` (``GPTBot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.api import FamilySpec
from zhbench.engines.context import FittedIds, fit_newest, prompt_budget
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.local.checkpoints import config_model_type
from zhbench.engines.local.transformers import CausalLMEngine, checked_tokenizer
from zhbench.engines.types import GenerationParams, Message, Prompt

if TYPE_CHECKING:
    import torch
    from transformers import LogitsProcessorList, PreTrainedTokenizerBase

#: utterances kept as context, the current query included (interact.py ``max_history_len``)
MAX_HISTORY_LEN = 3


def dialogbot_defaults() -> GenerationParams:
    """``GPTBot``'s defaults: top-k 8, no top-p, temperature 1, no repetition penalty, at most 128 tokens.

    Upstream's ``topp=0`` means "off"; here top_p 1.0 means off for every family.
    """
    return GenerationParams(temperature=1.0, top_p=1.0, top_k=8, repetition_penalty=1.0, max_new_tokens=128)


def dialogbot_input_ids(
    utterances: Sequence[Sequence[int]], *, cls_id: int, sep_id: int, max_prompt_tokens: int
) -> FittedIds:
    """``[CLS] u1 [SEP] u2 [SEP] u3 [SEP]`` over the newest ``MAX_HISTORY_LEN`` utterances.

    Deviation: upstream never trims and crashes once the sequence passes ``n_positions``; here the
    oldest of those utterances are dropped until the prompt fits ``max_prompt_tokens``, and if the
    newest alone does not fit, its last tokens are (those nearest the reply).
    """

    def encoded(window: Sequence[Sequence[int]]) -> list[int]:
        ids = [cls_id]
        for utterance in window:
            ids += [*utterance, sep_id]
        return ids

    window = fit_newest(list(utterances[-MAX_HISTORY_LEN:]), lambda w: len(encoded(w)) <= max_prompt_tokens)
    ids = encoded(window)
    dropped = len(utterances) - len(window)
    if len(ids) <= max_prompt_tokens:
        return FittedIds(ids, dropped)
    keep = max(max_prompt_tokens - 2, 0)
    return FittedIds([cls_id, *list(window[-1])[len(window[-1]) - keep :], sep_id], dropped, truncated=True)


class Gpt2DialogbotEngine(CausalLMEngine):
    family = "gpt2-dialogbot"
    model_class_name = "GPT2LMHeadModel"

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        return (path / "vocab.txt").is_file() and config_model_type(path) == "gpt2"

    @classmethod
    def load_tokenizer(cls, folder: Path) -> PreTrainedTokenizerBase:
        from transformers import BertTokenizer  # upstream's BertTokenizerFast: one class in transformers 5

        if not (folder / "vocab.txt").is_file():
            raise ModelLoadError(folder, "missing tokenizer file vocab.txt")
        # Loaded explicitly, as upstream does: AutoTokenizer can silently return an empty GPT2Tokenizer here.
        return checked_tokenizer(BertTokenizer, folder)

    def default_params(self) -> GenerationParams:
        return dialogbot_defaults()

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        fitted = dialogbot_input_ids(
            [self.utterance_ids(m) for m in history],
            cls_id=self.tokenizer.cls_token_id,
            sep_id=self.tokenizer.sep_token_id,
            max_prompt_tokens=prompt_budget(self.max_positions, params.max_new_tokens),
        )
        text = "".join(self.tokenizer.convert_ids_to_tokens(fitted.ids))
        return Prompt(text, fitted.ids, fit=fitted.fit(self.max_positions))

    def reply_end_ids(self) -> frozenset[int]:
        return frozenset({self.tokenizer.sep_token_id})

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        # Upstream joins the raw WordPiece tokens: "##" pieces and lower case are kept.
        return "".join(self.tokenizer.convert_ids_to_tokens(list(output_ids)))

    def logits_processors(self, params: GenerationParams, prompt: Prompt) -> LogitsProcessorList:
        """interact.py's order: repetition penalty, temperature, ban [UNK], top-k, top-p, then sample."""
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            SuppressTokensLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
        )

        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(_ReplyRepetitionPenalty(params.repetition_penalty, len(prompt.input_ids)))
        if not params.greedy and params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(params.temperature))
        processors.append(SuppressTokensLogitsProcessor([self.tokenizer.unk_token_id], device=str(self.model.device)))
        if not params.greedy:
            if params.top_k > 0:
                processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                processors.append(_NucleusFilter(params.top_p))
        return processors


class _ReplyRepetitionPenalty:
    """interact.py's penalty: divide the logit of every token already in the reply (prompt excluded).

    Upstream divides negative logits too, which raises them; kept on purpose.
    """

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        reply = sorted(set(input_ids[0, self.prompt_length :].tolist()))
        if reply:
            scores = scores.clone()
            scores[0, reply] /= self.penalty
        return scores


class _NucleusFilter:
    """interact.py's top-p: drop tokens once the cumulative probability passes top_p, keeping the first."""

    def __init__(self, top_p: float) -> None:
        self.top_p = top_p

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        sorted_scores, sorted_indices = torch.sort(scores, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_scores, dim=-1), dim=-1)
        remove = cumulative > self.top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        return scores.masked_fill(remove.scatter(-1, sorted_indices, remove), float("-inf"))


FAMILY = FamilySpec(
    name=Gpt2DialogbotEngine.family,
    summary="shibing624/gpt2-dialogbot-base-chinese: GPT-2 over a BERT-Chinese vocabulary",
    matches_layout=Gpt2DialogbotEngine.matches_layout,
    load=Gpt2DialogbotEngine.from_options,
    name_hints=("dialogbot",),
    standin="zhbench.engines.standins.gpt2:write_dialogbot_standin",
)
