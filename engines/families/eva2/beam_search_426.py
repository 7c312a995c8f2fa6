"""Beam search and beam sampling as transformers 4.x ``generate(num_beams=N)`` ran them, for upstream EVA.

EVA's interactive script calls ``generate()`` with 4 beams and sampling. Upstream ran it on
transformers 4.2x (its requirements: ``transformers>=4.20.1``; it breaks from 4.53). Transformers
changed this algorithm in 4.35 (pull request #26843: temperature and top-p now act on each step's
log-probabilities instead of the beams' accumulated scores) and again in its 4.5x rewrite (other
beams start at -1e9, length normalised by generated tokens only). Following the 4.26 code
(``generation/utils.py`` ``beam_sample``, ``generation/beam_search.py`` ``BeamSearchScorer`` and
``BeamHypotheses``), one prompt at a time:

* log-softmax of the logits, the logits processors, then each beam's accumulated score is added, and
  only then temperature and top-p (keeping at least two tokens per beam) act on the sum;
* ``2 * num_beams`` candidates are drawn from the softmax over all beams' tokens, then sorted by score
  (without sampling, 4.26's ``beam_search``: no warpers, beams after the first start at -1e9, and the
  candidates are the ``2 * num_beams`` best);
* a candidate ending in the end token among the best ``num_beams`` becomes a finished hypothesis,
  scored ``sum / len(hypothesis) ** length_penalty`` (the decoder's start token counts); the others
  continue, at most ``num_beams``;
* the search ends when the finished hypotheses cannot be beaten (``early_stopping=False``) or at
  ``max_length``; then the running beams join the finished ones and the best wins.

Differences from the 4.26 code: random draws come from the caller's generator (not torch's global one),
scores are float32 on every device (4.26 kept a fp16 model's fp16 logits), and ``cancel`` is checked
before each step.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessorList

from zhbench.engines.families.eva2.model import EvaForConditionalGeneration, eva_decoder_weights
from zhbench.engines.local.steps.seq2seq import decoder_step
from zhbench.engines.local.transformers import as_ids, as_scores


@dataclass
class FinishedHypotheses:
    """The ``num_beams`` best finished sequences (4.26's ``BeamHypotheses`` with ``early_stopping=False``)."""

    num_beams: int
    length_penalty: float
    beams: list[tuple[float, list[int]]] = field(default_factory=list)
    worst_score: float = 1e9

    def add(self, sequence: list[int], sum_logprobs: float) -> None:
        score = sum_logprobs / (len(sequence) ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst_score:
            self.beams.append((score, sequence))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, index) for index, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, length: int) -> bool:
        """No running beam can still beat the worst of a full set of finished ones."""
        if len(self.beams) < self.num_beams:
            return False
        best_possible: float = best_sum_logprobs / length**self.length_penalty  # int ** float is typed Any
        return self.worst_score >= best_possible

    def best(self) -> list[int]:
        return sorted(self.beams, key=lambda beam: beam[0])[-1][1]


def legacy_beam_search(
    model: EvaForConditionalGeneration,
    encoder_ids: Sequence[int],
    *,
    processors: LogitsProcessorList,
    warpers: LogitsProcessorList | None,
    num_beams: int,
    length_penalty: float,
    max_length: int,
    start_id: int,
    end_id: int,
    generator: torch.Generator,
    cancel: threading.Event,
) -> list[int] | None:
    """The generated ids after the start token (ending in ``end_id`` if it fits), or None if cancelled.

    ``warpers`` None means beam search without sampling.
    ``max_length`` counts the decoder's start token, as ``generate(max_length=…)`` does; each step runs
    the beams' last tokens through ``decoder_step`` (the lean step, or the model's forward with its cache).
    """
    device = model.device
    source = torch.tensor([list(encoder_ids)], device=device)
    with torch.inference_mode():
        encoded = model.get_encoder()(input_ids=source, attention_mask=torch.ones_like(source))
        beams_encoded = encoded.last_hidden_state.repeat_interleave(num_beams, 0)
        step = decoder_step(model, beams_encoded, eva_decoder_weights(model))
        sequences = torch.full((num_beams, 1), start_id, dtype=torch.long, device=device)
        beam_scores = torch.zeros(num_beams, dtype=torch.float32, device=device)
        if warpers is None:
            beam_scores[1:] = -1e9  # identical beams would otherwise all continue the same way
        finished = FinishedHypotheses(num_beams, length_penalty)
        done = False
        while True:
            if cancel.is_set():
                return None
            scores = torch.log_softmax(step.run(sequences[:, -1:]).float(), dim=-1)
            scores = processors(as_ids(sequences), as_scores(scores)) + beam_scores[:, None]
            vocab_size = scores.shape[-1]
            if warpers is None:
                picked_scores, picks = torch.topk(scores.view(1, -1), 2 * num_beams, dim=1, largest=True, sorted=True)
            else:
                flat = warpers(as_ids(sequences), as_scores(scores)).view(1, -1)
                probabilities = torch.softmax(flat, dim=-1)
                picks = torch.multinomial(probabilities, num_samples=2 * num_beams, generator=generator)
                picked_scores, order = torch.sort(torch.gather(flat, -1, picks), descending=True, dim=1)
                picks = torch.gather(picks, -1, order)
            length = sequences.shape[1]
            kept: list[tuple[float, int, int]] = []  # score, token, beam
            for rank, (pick, score) in enumerate(zip(picks[0].tolist(), picked_scores[0].tolist(), strict=True)):
                beam, token = divmod(pick, vocab_size)
                if token == end_id:
                    if rank < num_beams:
                        finished.add(sequences[beam].tolist(), score)
                else:
                    kept.append((score, token, beam))
                if len(kept) == num_beams:
                    break
            if len(kept) < num_beams:
                raise RuntimeError(f"beam sampling kept {len(kept)} beams of {num_beams}: too many end tokens drawn")
            done = finished.is_done(picked_scores.max().item(), length)
            beams = torch.tensor([beam for _, _, beam in kept], device=device)
            tokens = torch.tensor([[token] for _, token, _ in kept], device=device)
            sequences = torch.cat([sequences[beams], tokens], dim=-1)
            beam_scores = torch.tensor([score for score, _, _ in kept], dtype=torch.float32, device=device)
            step.reorder(beams)
            if done or sequences.shape[1] >= max_length:
                break
        if not done:
            for beam in range(num_beams):
                finished.add(sequences[beam].tolist(), beam_scores[beam].item())
    best = finished.best()
    if len(best) < max_length:
        best = [*best, end_id]
    return best[1:]
