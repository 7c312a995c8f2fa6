"""What ChatYuan and PromptCLUE share: ClueAI's T5 checkpoints, escaped text, a 768-token input.

Both model cards (clue-ai/ChatYuan README-v1.MD, clue-ai/PromptCLUE README) load ``T5Tokenizer`` and
``T5ForConditionalGeneration``, escape newlines before encoding (SentencePiece would turn them into
spaces) and encode with ``truncation=True, max_length=768``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from engines.checkpoints import config_model_type
from engines.context import fit_messages, keep_tail_that_fits
from engines.standins import mark_standin, save_weights, train_sentencepiece, write_json
from engines.transformers_engine import T5Engine
from engines.types import GenerationParams, Message, Prompt

if TYPE_CHECKING:
    import torch

#: the cards' ``max_length=768`` on the encoder input, ``</s>`` included
MAX_INPUT_TOKENS = 768


class ClueT5Engine(T5Engine):
    """A ClueAI T5 model; a family adds its prompt text and its escaping."""

    #: ``tokenizer_config.json`` as the real checkpoint ships it
    standin_tokenizer_config: ClassVar[dict[str, Any]]

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
        if not fits(kept):
            older, last = kept[:-1], kept[-1]
            content = keep_tail_that_fits(last["content"], lambda c: fits([*older, {"role": "user", "content": c}]))
            kept = [*older, {"role": "user", "content": content}]
        raw_text = self.prompt_text(kept, params)
        return Prompt(self.preprocess(raw_text), self._encode(raw_text))

    def _encode(self, raw_text: str) -> list[int]:
        return list(self.tokenizer(self.preprocess(raw_text)).input_ids)

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return self.postprocess(self.tokenizer.decode(list(output_ids), skip_special_tokens=True))

    @classmethod
    def write_standin(cls, folder: Path, *, weights_format: str = "bin") -> Path:
        from transformers import T5Tokenizer

        folder.mkdir(parents=True, exist_ok=True)
        train_sentencepiece(folder)
        write_json(folder / "tokenizer_config.json", cls.standin_tokenizer_config)
        vocab_size = len(T5Tokenizer.from_pretrained(str(folder)))
        config = {
            "architectures": ["T5ForConditionalGeneration"],
            "model_type": "t5",
            "d_model": 32,
            "d_ff": 64,
            "d_kv": 8,
            "num_heads": 4,
            "num_layers": 2,
            "num_decoder_layers": 2,
            "feed_forward_proj": "gated-gelu",
            "dense_act_fn": "gelu_new",
            "is_gated_act": True,
            "tie_word_embeddings": False,
            "vocab_size": vocab_size,
            "decoder_start_token_id": 0,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128,
            "layer_norm_epsilon": 1e-06,
            "dropout_rate": 0.1,
            "initializer_factor": 1.0,
        }
        write_json(folder / "config.json", config)
        # A small initializer keeps random logits flat; the default one makes every reply collapse onto <pad>.
        save_weights(random_clue_t5_state({**config, "initializer_factor": 0.05}), folder, weights_format)
        mark_standin(folder, cls.family)
        return folder


def random_clue_t5_state(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random weights for a T5 ``config`` laid out as ClueAI's checkpoints: the embedding shared by both
    stacks (saved once), and an ``lm_head`` of its own (a T5 built by transformers 5 ties it to the embedding)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    state = dict(T5ForConditionalGeneration(T5Config(**config)).state_dict())
    state["lm_head.weight"] = torch.randn_like(state["lm_head.weight"]) * config.get("initializer_factor", 1.0)
    return state
