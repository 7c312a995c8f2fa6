"""Incremental decoding state of a transformers model: the ids seen so far and the next-token logits.

Each token after the prompt runs through a lean step where the model allows it
(``engines/local/steps/``): bitwise the forward's logits without its per-step Python.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from zhbench.engines.local.steps import CausalStep
    from zhbench.engines.local.steps.seq2seq import DecoderWeights


class Decoding(ABC):
    """Incremental decoding state: the ids seen by the logits processors and the next-token logits."""

    sequence: torch.Tensor
    logits: torch.Tensor
    #: prompt tokens this decoding ran through the model
    fed: int

    def __init__(self, model: PreTrainedModel) -> None:
        self._model = model

    @abstractmethod
    def _run(self, ids: torch.Tensor) -> None:
        """Run ``ids`` after what the model has seen; set ``logits`` (float32) for the next token."""

    def _has_room(self) -> bool:
        return True

    def advance(self, token: int) -> bool:
        """Feed one token; False when the model has no room for another."""
        import torch

        step = torch.tensor([[token]], device=self._model.device)
        self.sequence = torch.cat([self.sequence, step], dim=-1)
        if not self._has_room():
            return False
        self._run(step)
        return True


class CausalDecoding(Decoding):
    """Decoder-only models: the processors see prompt and reply, as in ``generate()``.

    Given the decoding of the reply before (``reuse``), its key/value cache is kept for the longest
    prefix the two inputs share, and only the rest of the prompt is run: a conversation whose prompt
    extends the previous turn's (prompt, reply, new message) costs the new tokens, not the whole history.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        input_ids: Sequence[int],
        max_positions: int,
        reuse: CausalDecoding | None = None,
    ) -> None:
        import torch

        from zhbench.engines.local.steps import causal_step

        super().__init__(model)
        self._max_positions = max_positions
        self._cache: Any = None
        self._step: CausalStep | None = reuse._step if reuse is not None else causal_step(model)
        self.sequence = torch.tensor([list(input_ids)], device=model.device)
        shared = 0
        if reuse is not None and (shared := reuse.shared_prefix(input_ids)):
            if _cropped(reuse._cache, shared):
                self._cache = reuse._cache
            else:
                shared = 0
        self.fed = len(input_ids) - shared
        self._run(self.sequence[:, shared:])

    def shared_prefix(self, input_ids: Sequence[int]) -> int:
        """How many leading ``input_ids`` the cache already holds (all but the last: it must be run)."""
        if self._cache is None:
            return 0
        cached = self.sequence[0, : self._cache.get_seq_length()].tolist()
        shared = 0
        for held, wanted in zip(cached, input_ids[:-1], strict=False):
            if held != wanted:
                break
            shared += 1
        return shared

    def _run(self, ids: torch.Tensor) -> None:
        """One token after a filled cache goes through the model's lean step (bitwise the forward's logits,
        without its per-step Python) where it has one; a prompt goes through the forward."""
        import torch

        if self._step is not None and self._cache is not None and ids.shape[1] == 1:
            logits = self._step.run(ids, self._cache)
        else:
            with torch.inference_mode():
                # only the last position's logits are wanted, as generate() asks: the head over every
                # prompt position would cost vocabulary × width × length (0.1 s for 30 tokens at Qwen's 152k)
                output = self._model(input_ids=ids, cache=self._cache, use_cache=True, logits_to_keep=1)
            self._cache = output.cache
            logits = output.logits[:, -1]
        self.logits = logits.to(dtype=torch.float32)

    def _has_room(self) -> bool:
        return self.sequence.shape[1] < self._max_positions


def _cropped(cache: Any, length: int) -> bool:
    """Cut ``cache`` back to its first ``length`` positions; False when it cannot be: a sliding-window layer
    (Mistral, Qwen2 with ``use_sliding_window``) past its window keeps no older positions to go back to, and
    the prompt then runs whole."""
    try:
        cache.crop(length - cache.get_seq_length())
    except (RuntimeError, ValueError):
        return False
    return True


class Seq2SeqDecoding(Decoding):
    """Encoder-decoder models (T5, EVA): encode once; the processors see the decoder ids, as in ``generate()``.

    The decoder runs through ``DecoderStep`` over the ``decoder`` weights the family describes (the same
    operations as the model's forward, bitwise the same logits, without its per-step Python), else
    through the forward.
    """

    def __init__(self, model: PreTrainedModel, input_ids: Sequence[int], decoder: DecoderWeights | None) -> None:
        import torch

        from zhbench.engines.local.steps.seq2seq import decoder_step

        super().__init__(model)
        encoder_ids = torch.tensor([list(input_ids)], device=model.device)
        with torch.inference_mode():
            encoded = model.get_encoder()(input_ids=encoder_ids, attention_mask=torch.ones_like(encoder_ids))
        self._step = decoder_step(model, encoded.last_hidden_state, decoder)
        self.fed = len(input_ids)
        self.sequence = torch.tensor([[model.config.decoder_start_token_id]], device=model.device)
        self._run(self.sequence)

    def _run(self, ids: torch.Tensor) -> None:
        import torch

        self.logits = self._step.run(ids).to(dtype=torch.float32)
