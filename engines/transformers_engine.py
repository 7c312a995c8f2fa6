"""What the families run through transformers share: safe loading and a KV-cached decode loop.

The loop applies transformers' own logits processors in the order ``generate()`` builds them and
samples the way ``generate()`` samples (float32 scores, softmax, ``torch.multinomial``), so a seeded
reply is token-identical to ``torch.manual_seed(seed); model.generate(...)`` with upstream's
arguments. It differs in what a user feels: each engine has its own random generator (two panes
sampling at once do not disturb each other's seeds), cancellation is checked at every token, and
text streams without a second thread. Beam search, which cannot stream, goes through ``generate()``.
In this loop (and EVA's legacy beam search) each token after the prompt runs through a lean step
(``engines/gpt2_step.py``, ``engines/seq2seq_step.py``) that gives bitwise the model forward's logits
without its per-step Python; ``generate()``'s beam search runs the forward.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from engines.base import Engine
from engines.checkpoints import load_state_dict, read_json, require_files
from engines.devices import resolve_device, resolve_dtype
from engines.errors import ModelLoadError
from engines.types import GenerationParams, Message, Prompt, Reply, StopReason

if TYPE_CHECKING:
    import torch
    from transformers import LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase


class TransformersEngine(Engine):
    """A model loaded through transformers from a local folder, never with ``trust_remote_code``."""

    #: the transformers model class upstream uses, e.g. ``GPT2LMHeadModel``
    model_class_name: ClassVar[str]
    #: dtype on a GPU: what upstream runs the model in
    cuda_dtype: ClassVar[str] = "float32"
    #: how many of its own replies an engine remembers as exact token ids
    reply_memo_size: ClassVar[int] = 256

    def __init__(
        self, model_path: Path, device: str, dtype: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> None:
        super().__init__(model_path, device, dtype)
        self.model = model
        self.tokenizer = tokenizer
        self._reply_ids: OrderedDict[str, list[int]] = OrderedDict()

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, *, device: str | None = None, dtype: str | None = None) -> TransformersEngine:
        folder = path if path.is_dir() else path.parent
        require_files(folder, "config.json")
        read_json(folder / "config.json")
        tokenizer = cls.load_tokenizer(folder)
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device, cls.cuda_dtype)
        model = cls._load_model(folder, dtype)
        model.to(device)
        return cls(folder, device, dtype, model, tokenizer)

    @classmethod
    @abstractmethod
    def load_tokenizer(cls, folder: Path) -> PreTrainedTokenizerBase:
        """The tokenizer exactly as upstream loads it; a ``ModelLoadError`` naming a missing file."""

    @classmethod
    def _load_model(cls, folder: Path, dtype: str) -> PreTrainedModel:
        import torch
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        model_class = getattr(transformers, cls.model_class_name)
        try:
            config = model_class.config_class.from_pretrained(str(folder))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelLoadError(
                folder / "config.json", f"not a valid {model_class.config_class.__name__} ({exc})"
            ) from None
        state = load_state_dict(folder)
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in model_class(config).state_dict().items()}
        for name, tensor in state.items():
            if name in expected and tuple(tensor.shape) != expected[name]:
                raise ModelLoadError(
                    folder, f"weight {name} has shape {tuple(tensor.shape)}, the config asks for {expected[name]}"
                )
        try:
            model, info = model_class.from_pretrained(
                None, config=config, state_dict=state, dtype=getattr(torch, dtype), output_loading_info=True
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                folder, f"weights do not fit {cls.model_class_name} ({str(exc).splitlines()[0]})"
            ) from None
        missing = sorted(set(info.get("missing_keys", ())) - set(cls._tied_keys(model)))
        if missing:
            raise ModelLoadError(
                folder, f"weights lack {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            )
        return model.eval()

    @staticmethod
    def _tied_keys(model: PreTrainedModel) -> list[str]:
        tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
        return list(tied)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def weight_bytes(self) -> int:
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())

    # --- prompts ------------------------------------------------------------------------------

    def encode_text(self, text: str) -> list[int]:
        """Token ids of one piece of text, without special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def utterance_ids(self, message: Message) -> list[int]:
        """A history message as token ids: a reply this engine generated keeps the exact ids it had.

        Upstream loops keep generated ids in their history rather than re-encoding the decoded text,
        and re-encoding is not always the identity (byte-level BPE, WordPiece ``##`` pieces).
        """
        if message["role"] == "assistant":
            remembered = self._reply_ids.get(message["content"])
            if remembered is not None:
                return list(remembered)
        return self.encode_text(message["content"])

    def _reply_finished(self, prompt: Prompt, reply: Reply) -> None:
        ids = reply.output_ids[:-1] if reply.stats.stop_reason is StopReason.EOS else reply.output_ids
        self._reply_ids[reply.text] = list(ids)
        self._reply_ids.move_to_end(reply.text)
        while len(self._reply_ids) > self.reply_memo_size:
            self._reply_ids.popitem(last=False)

    # --- decoding -----------------------------------------------------------------------------

    def logits_processors(self, params: GenerationParams, prompt: Prompt) -> LogitsProcessorList:
        """transformers' processors for these settings, in the order ``generate()`` applies them.

        ``prompt`` is the reply's input: a family whose processors look at it (a penalty that spares the
        prompt, a ban on repeating the encoder input) finds it here."""
        from transformers.generation import (
            LogitsProcessorList,
            NoRepeatNGramLogitsProcessor,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if params.no_repeat_ngram_size > 0:
            processors.append(NoRepeatNGramLogitsProcessor(params.no_repeat_ngram_size))
        if not params.greedy:
            if params.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k != 0:
                processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
        return processors

    def _token_source(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        if params.greedy and params.num_beams > 1:
            return self._beam_search_tokens(prompt, params, cancel)
        return self._stepwise_tokens(prompt, params)

    def _stepwise_tokens(self, prompt: Prompt, params: GenerationParams) -> Iterator[int]:
        import torch

        processors = self.logits_processors(params, prompt)
        generator = torch.Generator(device=self.model.device).manual_seed(params.seed or 0)
        decoding = self._begin_decoding(prompt.input_ids)
        while True:
            scores = processors(decoding.sequence, decoding.logits)
            if params.greedy:
                next_token = torch.argmax(scores, dim=-1)
            else:
                probs = torch.nn.functional.softmax(scores, dim=-1)
                next_token = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
            token = int(next_token.item())
            yield token
            if not decoding.advance(token):
                return

    @abstractmethod
    def _begin_decoding(self, input_ids: Sequence[int]) -> _Decoding:
        """Run the prompt through the model; the state from which tokens are generated one by one."""

    def _beam_search_tokens(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        """Beam search through ``generate()`` with upstream's arguments; the reply arrives whole."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(
                self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
            ) -> torch.BoolTensor:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        input_ids = torch.tensor([prompt.input_ids], device=self.model.device)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                num_beams=params.num_beams,
                length_penalty=params.length_penalty,
                no_repeat_ngram_size=params.no_repeat_ngram_size,
                repetition_penalty=params.repetition_penalty,
                max_new_tokens=params.max_new_tokens,
                stopping_criteria=StoppingCriteriaList([_Cancelled()]),
            )
        if cancel.is_set():
            return
        skip = 1 if self.model.config.is_encoder_decoder else input_ids.shape[1]
        yield from (int(t) for t in output[0, skip:].tolist())


def checked_tokenizer(tokenizer_class: Any, folder: Path) -> PreTrainedTokenizerBase:
    """``tokenizer_class.from_pretrained(folder)``, refusing a tokenizer that loaded empty.

    Some transformers loaders return an empty tokenizer instead of failing when files are missing or
    of the wrong kind; such a model would answer from nothing but ``<unk>``.
    """
    try:
        tokenizer = tokenizer_class.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(folder, f"cannot load the tokenizer ({str(exc).splitlines()[0]})") from None
    probe = tokenizer.encode("你好 hello", add_special_tokens=False)
    if not probe or all(token == tokenizer.unk_token_id for token in probe):
        raise ModelLoadError(folder, "the tokenizer files load as an empty vocabulary")
    return tokenizer


class _Decoding(ABC):
    """Incremental decoding state: the ids seen by the logits processors and the next-token logits."""

    sequence: torch.Tensor
    logits: torch.Tensor

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


class CausalDecoding(_Decoding):
    """Decoder-only models (GPT-2): the processors see prompt and reply, as in ``generate()``.

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

        from engines.gpt2_step import Gpt2Step

        super().__init__(model)
        self._max_positions = max_positions
        self._cache: Any = None
        self._step = reuse._step if reuse is not None else Gpt2Step.for_model(model)
        self.sequence = torch.tensor([list(input_ids)], device=model.device)
        shared = 0
        if reuse is not None and (shared := reuse.shared_prefix(input_ids)):
            self._cache = reuse._cache
            self._cache.crop(shared - self._cache.get_seq_length())
        #: prompt tokens this decoding ran through the model
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
        """One token after a filled cache goes through ``Gpt2Step`` (bitwise the forward's logits, without
        its per-step Python) where the model allows; a prompt goes through the forward."""
        import torch

        if self._step is not None and self._cache is not None and ids.shape[1] == 1:
            logits = self._step.run(ids, self._cache)
        else:
            with torch.inference_mode():
                output = self._model(input_ids=ids, cache=self._cache, use_cache=True)
            self._cache = output.cache
            logits = output.logits[:, -1]
        self.logits = logits.to(dtype=torch.float32)

    def _has_room(self) -> bool:
        return self.sequence.shape[1] < self._max_positions


class Seq2SeqDecoding(_Decoding):
    """Encoder-decoder models (T5, EVA): encode once; the processors see the decoder ids, as in ``generate()``.

    The decoder runs through ``DecoderStep`` (the same operations as the model's forward, bitwise the
    same logits, without its per-step Python) where the model allows, else through the forward.
    """

    def __init__(self, model: PreTrainedModel, input_ids: Sequence[int]) -> None:
        import torch

        from engines.seq2seq_step import decoder_step

        super().__init__(model)
        encoder_ids = torch.tensor([list(input_ids)], device=model.device)
        with torch.inference_mode():
            encoded = model.get_encoder()(input_ids=encoder_ids, attention_mask=torch.ones_like(encoder_ids))
        self._step = decoder_step(model, encoded.last_hidden_state)
        self.sequence = torch.tensor([[model.config.decoder_start_token_id]], device=model.device)
        self._run(self.sequence)

    def _run(self, ids: torch.Tensor) -> None:
        import torch

        self.logits = self._step.run(ids).to(dtype=torch.float32)


class CausalLMEngine(TransformersEngine):
    """A GPT-2 style model; replies never run past ``max_positions``.

    The decoding of the last reply that ended normally is kept, with its key/value cache, so that the
    next reply reuses what the two prompts share (``CausalDecoding``). A reply that fails drops it.
    """

    model_class_name = "GPT2LMHeadModel"

    def __init__(
        self, model_path: Path, device: str, dtype: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> None:
        super().__init__(model_path, device, dtype, model, tokenizer)
        self._kept: CausalDecoding | None = None
        self._underway: CausalDecoding | None = None

    @property
    def max_positions(self) -> int:
        return int(self.model.config.n_positions)

    def _token_source(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        self._underway = None
        return super()._token_source(prompt, params, cancel)

    def _begin_decoding(self, input_ids: Sequence[int]) -> _Decoding:
        reuse, self._kept = self._kept, None
        self._underway = CausalDecoding(self.model, input_ids, self.max_positions, reuse)
        return self._underway

    def fed_token_count(self, prompt: Prompt) -> int:
        return self._underway.fed if self._underway is not None else len(prompt.input_ids)

    def _reply_finished(self, prompt: Prompt, reply: Reply) -> None:
        super()._reply_finished(prompt, reply)
        self._kept, self._underway = self._underway, None


class T5Engine(TransformersEngine):
    """A T5 encoder-decoder with a SentencePiece ``spiece.model``, loaded as upstream does with ``T5Tokenizer``."""

    model_class_name = "T5ForConditionalGeneration"

    @classmethod
    def load_tokenizer(cls, folder: Path) -> PreTrainedTokenizerBase:
        from transformers import T5Tokenizer

        if not (folder / "spiece.model").is_file() and not (folder / "tokenizer.json").is_file():
            raise ModelLoadError(folder, "missing tokenizer file spiece.model")
        # T5Tokenizer(vocab_file=...) silently ignores the file in transformers 5: always from_pretrained.
        return checked_tokenizer(T5Tokenizer, folder)

    def is_end_token(self, token_id: int) -> bool:
        return token_id == self.tokenizer.eos_token_id

    def _begin_decoding(self, input_ids: Sequence[int]) -> _Decoding:
        return Seq2SeqDecoding(self.model, input_ids)
