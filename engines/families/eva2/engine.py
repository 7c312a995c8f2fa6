"""EVA2.0 (thu-coai): open-domain chit-chat on zhbench's own EVA model (``model.py`` beside this one).

Follows thu-coai/EVA@a9c15c9 (branch huggingface): ``src/eva_interactive.py`` (the context: each
utterance ending in ``<sep>``, the newest 8 that fit in 128 tokens, then ``<s_0>``) and
``src/scripts/eva_inference_interactive.sh`` with ``src/arguments.py`` (its ``generate()`` call:
beam-sample, 4 beams, run as transformers 4.2x ran it: ``beam_search_426.py``). The
streaming preset follows the main branch's ``src/scripts/eva_inference_interactive_no_beam.sh`` (one
beam, temperature 0.7), decoded step by step with ``generate()``'s processors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zhbench.engines.api import FamilySpec
from zhbench.engines.context import FittedIds
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.families.eva2.tokenizer import NEWLINE, SPACE, EvaTokenizer, prepare_jieba
from zhbench.engines.local.checkpoints import (
    check_layers_against_weights,
    check_sizes,
    lacking_weights,
    load_state_dict,
    read_json,
)
from zhbench.engines.local.decoding import Decoding, Seq2SeqDecoding
from zhbench.engines.local.transformers import TransformersEngine, TransformersGeneration, as_ids
from zhbench.engines.types import ContextFit, GenerationParams, Message, Prompt, failed_checks, whole_number

if TYPE_CHECKING:
    from transformers import LogitsProcessorList

    from zhbench.engines.families.eva2.model import EvaForConditionalGeneration
    from zhbench.engines.local.steps.seq2seq import DecoderWeights

#: ``eva_interactive.py``: at most 8 utterances (``full_context_list[:-9:-1]``) ...
MAX_UTTERANCES = 8
#: ... whose ids, ``<s_0>`` included, fit in 128 tokens
MAX_INPUT_TOKENS = 128
#: keys in an EVA ``config.json`` (which has no ``model_type``)
EVA_CONFIG_KEYS = ("d_model", "d_ff", "d_kv", "num_heads", "num_layers")
#: converter keys that alias ``shared.weight`` (upstream ties all three to one embedding)
EMBEDDING_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


@dataclass(frozen=True)
class Eva2Params(GenerationParams):
    """EVA's settings add two of ``generate()``'s: ``min_length`` (which counts the decoder's start
    token, as upstream passes it) and ``encoder_no_repeat_ngram_size`` (n-grams of the input)."""

    min_length: int = 2
    encoder_no_repeat_ngram_size: int = 3

    def problems(self) -> dict[str, str]:
        own = [
            whole_number("min_length", self.min_length, 0, note="0: off"),
            whole_number("encoder_no_repeat_ngram_size", self.encoder_no_repeat_ngram_size, 0, note="0: off"),
        ]
        return {**super().problems(), **failed_checks(own)}


def eva2_defaults() -> Eva2Params:
    """``eva_inference_interactive.sh``: sample with 4 beams, temperature 0.9, top_p 0.9, top_k 0,
    repetition and length penalty 1.6, no repeated 3-grams (also against the input), ``max_length=128``
    (counting the decoder's start token: 127 new tokens), ``min_length=2``."""
    return Eva2Params(
        temperature=0.9,
        top_p=0.9,
        top_k=0,
        repetition_penalty=1.6,
        length_penalty=1.6,
        no_repeat_ngram_size=3,
        encoder_no_repeat_ngram_size=3,
        num_beams=4,
        max_new_tokens=127,
        min_length=2,
    )


def eva2_streaming_sample() -> Eva2Params:
    """One beam, so the reply streams: ``_no_beam.sh``'s temperature 0.7, top_p 0.9, top_k 0 and
    repetition penalty 1.6, with the HF branch's other settings."""
    return Eva2Params(
        temperature=0.7,
        top_p=0.9,
        top_k=0,
        repetition_penalty=1.6,
        no_repeat_ngram_size=3,
        encoder_no_repeat_ngram_size=3,
        num_beams=1,
        max_new_tokens=127,
        min_length=2,
    )


def eva2_input_ids(utterances: Sequence[Sequence[int]], *, sep_id: int, start_id: int) -> FittedIds:
    """The encoder input: the newest 8 utterances, each ending in ``<sep>``, that fit, then ``<s_0>``.

    As upstream, utterances are taken newest first and one that does not fit is skipped while an
    older, shorter one may still be kept. Deviation: upstream drops a newest message that alone does
    not fit, and answers without it; here its last tokens are kept instead.
    """
    kept: list[int] = []
    taken = 0
    for index, utterance in enumerate(reversed(utterances[-MAX_UTTERANCES:])):
        ids = [*utterance, sep_id]
        if len(kept) + len(ids) + 1 <= MAX_INPUT_TOKENS:
            kept = ids + kept
            taken += 1
        elif index == 0:
            return FittedIds([*ids[-(MAX_INPUT_TOKENS - 1) :], start_id], len(utterances) - 1, truncated=True)
    return FittedIds([*kept, start_id], len(utterances) - taken)


class Eva2Engine(TransformersEngine):
    family = "eva2"
    model_class_name = "EvaForConditionalGeneration"
    cuda_dtype = "float16"  # upstream runs ``model.half()`` on the GPU

    tokenizer: EvaTokenizer  # type: ignore[assignment]  # EVA's own, not a transformers tokenizer
    model: EvaForConditionalGeneration

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        if not path.is_dir() or not (path / "vocab.txt").is_file() or not (path / "config.json").is_file():
            return False
        config = read_json(path / "config.json")
        return "model_type" not in config and all(key in config for key in EVA_CONFIG_KEYS)

    @classmethod
    def load_tokenizer(cls, folder: Path) -> EvaTokenizer:  # type: ignore[override]
        tokenizer = EvaTokenizer.from_file(folder / "vocab.txt")
        prepare_jieba()
        return tokenizer

    @classmethod
    def load(cls, path: Path, *, device: str | None = None, dtype: str | None = None) -> Eva2Engine:
        engine = super().load(path, device=device, dtype=dtype)
        assert isinstance(engine, Eva2Engine)
        if len(engine.tokenizer) > engine.model.config.vocab_size:
            raise ModelLoadError(
                engine.model_path / "vocab.txt",
                f"{len(engine.tokenizer)} tokens, but the model has only {engine.model.config.vocab_size}",
            )
        return engine

    @classmethod
    def _load_model(cls, folder: Path, dtype: str) -> EvaForConditionalGeneration:
        """The published weights as they are (fp16), each converted to ``dtype`` as it is placed.

        The file is memory-mapped, so on the CPU the float32 copy is the only one held in memory.
        """
        import torch
        import transformers

        from zhbench.engines.families.eva2.model import EvaForConditionalGeneration, eva_config

        transformers.utils.logging.set_verbosity_error()
        raw_config = read_json(folder / "config.json")
        try:
            config = eva_config(raw_config)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(folder / "config.json", f"not a valid EVA config ({exc})") from None
        check_sizes(folder / "config.json", raw_config)
        state = load_state_dict(folder)
        check_layers_against_weights(folder, raw_config, state)
        # Upstream loads shared.weight and both aliases into one embedding; the last one loaded wins.
        for alias in EMBEDDING_ALIASES:
            if alias in state:
                state["shared.weight"] = state[alias]
        with torch.device("meta"):
            model = EvaForConditionalGeneration(config)
        target = getattr(torch, dtype)
        missing = [name for name, _ in model.named_parameters() if name not in state]
        if missing:
            raise lacking_weights(folder, missing)
        weights: dict[str, torch.Tensor] = {}
        for name, parameter in model.named_parameters():
            tensor = state.pop(name)
            if tuple(tensor.shape) != tuple(parameter.shape):
                raise ModelLoadError(
                    folder,
                    f"weight {name} has shape {tuple(tensor.shape)}, the config asks for {tuple(parameter.shape)}",
                )
            weights[name] = tensor.to(target)
        del state
        model.load_state_dict(weights, assign=True, strict=False)
        evaluate: Callable[[], EvaForConditionalGeneration] = model.eval  # transformers leaves it unannotated
        return evaluate()

    def default_params(self) -> GenerationParams:
        return eva2_defaults()

    def presets(self) -> dict[str, GenerationParams]:
        """Upstream's beam-sample call (the reply appears when done), and one-beam sampling that streams."""
        return {"beam-sample": eva2_defaults(), "sample": eva2_streaming_sample()}

    # --- prompts ------------------------------------------------------------------------------

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        recent = history[-MAX_UTTERANCES:]  # only these can be kept: the older ones are not even encoded
        fitted = eva2_input_ids(
            [self.utterance_ids(m) for m in recent],
            sep_id=self.tokenizer.sep_id,
            start_id=self.tokenizer.reply_start_id,
        )
        text = "".join(self.tokenizer.convert_ids_to_tokens(fitted.ids)).replace(SPACE, " ").replace(NEWLINE, "\n")
        dropped = fitted.dropped_messages + len(history) - len(recent)
        return Prompt(text, fitted.ids, fit=ContextFit(MAX_INPUT_TOKENS, dropped, fitted.truncated))

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(output_ids)

    def reply_end_ids(self) -> frozenset[int]:
        return frozenset({self.tokenizer.sep_id})

    def streamable(self, text: str) -> str:
        held = self.tokenizer.unsettled_tail(text)
        return text[: len(text) - held]

    # --- decoding -----------------------------------------------------------------------------

    def token_source(self, generation: TransformersGeneration) -> Iterator[int]:
        if generation.params.num_beams > 1:
            return self._beam_tokens(generation.prompt, generation.params, generation.cancel)
        return self._stepwise_tokens(generation)

    def logits_processors(self, params: GenerationParams, prompt: Prompt) -> LogitsProcessorList:
        from transformers.generation.logits_process import LogitsProcessorList

        penalties, warpers = self._processors(params, prompt)
        return LogitsProcessorList([*penalties, *warpers])

    def _processors(self, params: GenerationParams, prompt: Prompt) -> tuple[LogitsProcessorList, LogitsProcessorList]:
        """``generate()``'s processors for upstream's arguments, in its order: penalties and bans, then
        the warpers (temperature, top-k, top-p) that only sampling applies."""
        import torch
        from transformers.generation.logits_process import (
            EncoderNoRepeatNGramLogitsProcessor,
            LogitsProcessorList,
            MinLengthLogitsProcessor,
            NoRepeatNGramLogitsProcessor,
            RepetitionPenaltyLogitsProcessor,
        )

        eva = params if isinstance(params, Eva2Params) else eva2_streaming_sample()
        inherited = super().logits_processors(params, prompt)
        is_penalty = (RepetitionPenaltyLogitsProcessor, NoRepeatNGramLogitsProcessor)
        penalties = LogitsProcessorList(p for p in inherited if isinstance(p, is_penalty))
        warpers = LogitsProcessorList(p for p in inherited if not isinstance(p, is_penalty))
        if eva.encoder_no_repeat_ngram_size > 0:
            ids = torch.tensor([list(prompt.input_ids)], device=self.model.device)
            penalties.append(EncoderNoRepeatNGramLogitsProcessor(eva.encoder_no_repeat_ngram_size, as_ids(ids)))
        if eva.min_length > 0:
            device = str(self.model.device)
            penalties.append(MinLengthLogitsProcessor(eva.min_length, self.tokenizer.sep_id, device=device))
        return penalties, warpers

    def decoder_weights(self) -> DecoderWeights:
        from zhbench.engines.families.eva2.model import eva_decoder_weights

        return eva_decoder_weights(self.model)

    def begin_decoding(self, input_ids: Sequence[int]) -> Decoding:
        return Seq2SeqDecoding(self.model, input_ids, self.decoder_weights())

    def _beam_tokens(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        """Upstream's beam-sample ``generate()`` call (beam search with ``greedy``) as transformers 4.2x
        ran it; the reply arrives whole."""
        import torch

        from zhbench.engines.families.eva2.beam_search_426 import legacy_beam_search

        penalties, warpers = self._processors(params, prompt)
        for warper in warpers:  # 4.x kept at least two tokens per beam when beam sampling
            if hasattr(warper, "min_tokens_to_keep"):
                warper.min_tokens_to_keep = 2
            if hasattr(warper, "top_k"):  # transformers 5 applies min_tokens_to_keep to top_k when built
                warper.top_k = max(warper.top_k, 2)
        generated = legacy_beam_search(
            self.model,
            prompt.input_ids,
            processors=penalties,
            warpers=None if params.greedy else warpers,
            num_beams=params.num_beams,
            length_penalty=params.length_penalty,
            max_length=params.max_new_tokens + 1,
            start_id=self.tokenizer.reply_start_id,
            end_id=self.tokenizer.sep_id,
            generator=torch.Generator(device=self.model.device).manual_seed(params.seed or 0),
            cancel=cancel,
        )
        yield from generated or ()


FAMILY = FamilySpec(
    name=Eva2Engine.family,
    summary="thu-coai/EVA2.0 (base, large, xlarge): open-domain chit-chat on zhbench's own EVA model",
    matches_layout=Eva2Engine.matches_layout,
    load=Eva2Engine.from_options,
    name_hints=("eva",),
    standin="zhbench.engines.standins.eva2:write_eva2_standin",
    dtypes={"cuda": Eva2Engine.cuda_dtype},
)
