"""What the families run through transformers share: safe loading and a KV-cached decode loop.

The loop applies transformers' own logits processors in the order ``generate()`` builds them and
samples the way ``generate()`` samples (float32 scores, softmax, ``torch.multinomial``), so a seeded
reply is token-identical to ``torch.manual_seed(seed); model.generate(...)`` with upstream's
arguments. It differs in what a user feels: each engine has its own random generator (two panes
sampling at once do not disturb each other's seeds), cancellation is checked at every token, and
text streams without a second thread. Beam search, which cannot stream, goes through ``generate()``.
In this loop (and EVA's legacy beam search) each token after the prompt runs through a lean step
(``engines/local/steps/``) that gives bitwise the model forward's logits without its per-step Python;
``generate()``'s beam search runs the forward.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from zhbench.engines.api import LoadOptions
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.local.checkpoints import (
    check_layers_against_weights,
    check_sizes,
    lacking_weights,
    load_state_dict,
    one_line,
    read_json,
    require_files,
)
from zhbench.engines.local.decoding import CausalDecoding, Decoding, Seq2SeqDecoding
from zhbench.engines.local.devices import resolve_device, resolve_dtype
from zhbench.engines.local.layout import lay_out_for_cpu
from zhbench.engines.local.token_engine import Generation, TokenEngine
from zhbench.engines.types import GenerationParams, Message, Prompt, Reply, StopReason

if TYPE_CHECKING:
    import torch
    from transformers import GenerationMixin, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

    from zhbench.engines.local.steps.seq2seq import DecoderWeights


class TransformersGeneration(Generation):
    """One reply of a transformers model: its decoding (made when the first token is asked for)."""

    def __init__(
        self, engine: TransformersEngine, prompt: Prompt, params: GenerationParams, cancel: threading.Event
    ) -> None:
        super().__init__(prompt)
        self.engine = engine
        self.params = params
        self.cancel = cancel
        #: the step-by-step decoding, once it began (beam search through ``generate()`` has none)
        self.decoding: Decoding | None = None

    def tokens(self) -> Iterator[int]:
        return self.engine.token_source(self)

    def text(self, reply_ids: Sequence[int]) -> str:
        return self.engine.decode_reply(reply_ids)

    def streamable(self, text: str) -> str:
        return self.engine.streamable(text)

    @property
    def fed_tokens(self) -> int:
        return self.decoding.fed if self.decoding is not None else len(self.prompt.input_ids)


class TransformersEngine(TokenEngine):
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
        self.end_ids = self.reply_end_ids()
        self._reply_ids: OrderedDict[str, list[int]] = OrderedDict()

    @abstractmethod
    def reply_end_ids(self) -> frozenset[int]:
        """The ids that end a reply, as upstream stops it."""

    @abstractmethod
    def decode_reply(self, output_ids: Sequence[int]) -> str:
        """The reply text for the ids generated so far, as upstream shows it."""

    def streamable(self, text: str) -> str:
        """The part of a reply in progress that later tokens cannot change (a family may hold back a tail)."""
        return text

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def from_options(cls, path: Path, options: LoadOptions) -> TransformersEngine:
        """``load`` as the registry calls it."""
        return cls.load(path, device=options.device, dtype=options.dtype)

    @classmethod
    def load(cls, path: Path, *, device: str | None = None, dtype: str | None = None) -> TransformersEngine:
        folder = path if path.is_dir() else path.parent
        require_files(folder, "config.json")
        read_json(folder / "config.json")
        tokenizer = cls.load_tokenizer(folder)
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device, cls.cuda_dtype)
        model = cls._load_model(folder, dtype)
        model.to(device)  # type: ignore[arg-type]  # transformers' decorated .to() loses its self to mypy
        if device == "cpu":
            lay_out_for_cpu(model, dtype)
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
        model_class = cls.model_class(folder)
        check_sizes(folder / "config.json", read_json(folder / "config.json"))
        try:
            config = model_class.config_class.from_pretrained(str(folder))
        except Exception as exc:  # transformers and huggingface_hub raise their own kinds for a bad value
            raise ModelLoadError(
                folder / "config.json", f"not a valid {model_class.config_class.__name__} ({one_line(exc)})"
            ) from None
        state = load_state_dict(folder)
        check_layers_against_weights(folder, config.to_dict(), state)
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
                folder, f"weights do not fit {model_class.__name__} ({str(exc).splitlines()[0]})"
            ) from None
        missing = sorted(set(info.get("missing_keys", ())) - set(cls._tied_keys(model)))
        if missing:
            raise lacking_weights(folder, missing)
        return cast("PreTrainedModel", model.eval())

    @classmethod
    def model_class(cls, folder: Path) -> Any:
        """The transformers class the model runs as (upstream's; a family may read it from the folder)."""
        import transformers

        return getattr(transformers, cls.model_class_name)

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

    def decode_text(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The tokenizer's text for ``ids`` (a flat list of ids decodes to one string)."""
        text = self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        assert isinstance(text, str)
        return text

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

    def generation_finished(self, generation: Generation, reply: Reply) -> None:
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
        from transformers.generation.logits_process import (
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

    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Generation:
        return TransformersGeneration(self, prompt, params, cancel)

    def token_source(self, generation: TransformersGeneration) -> Iterator[int]:
        """The reply's token ids: step by step, or beam search through ``generate()`` (the reply arrives whole)."""
        params = generation.params
        if params.greedy and params.num_beams > 1:
            return self._beam_search_tokens(generation.prompt, params, generation.cancel)
        return self._stepwise_tokens(generation)

    def _stepwise_tokens(self, generation: TransformersGeneration) -> Iterator[int]:
        import torch

        prompt, params = generation.prompt, generation.params
        processors = self.logits_processors(params, prompt)
        generator = torch.Generator(device=self.model.device).manual_seed(params.seed or 0)
        decoding = generation.decoding = self.begin_decoding(prompt.input_ids)
        while True:
            scores = processors(as_ids(decoding.sequence), as_scores(decoding.logits))
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
    def begin_decoding(self, input_ids: Sequence[int]) -> Decoding:
        """Run the prompt through the model; the state from which tokens are generated one by one."""

    def _beam_search_tokens(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        """Beam search through ``generate()`` with upstream's arguments; the reply arrives whole."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(
                self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
            ) -> torch.BoolTensor:
                stop = torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)
                return cast("torch.BoolTensor", stop)

        input_ids = torch.tensor([prompt.input_ids], device=self.model.device)
        with torch.inference_mode():
            output = cast("GenerationMixin", self.model).generate(
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
        probe = tokenizer.encode("你好 hello", add_special_tokens=False)
    except Exception as exc:  # the tokenizers library raises a bare Exception for a broken file
        raise ModelLoadError(folder, f"cannot load the tokenizer ({one_line(exc)})") from None
    if not probe or all(token == tokenizer.unk_token_id for token in probe):
        raise ModelLoadError(folder, "the tokenizer files load as an empty vocabulary")
    return cast("PreTrainedTokenizerBase", tokenizer)


class CausalLMEngine(TransformersEngine):
    """A decoder-only model; replies never run past ``max_positions``.

    The decoding of the last reply that ended normally is carried to the next, with its key/value cache,
    so that the next reply reuses what the two prompts share (``CausalDecoding``). A reply that fails
    drops it.
    """

    def __init__(
        self, model_path: Path, device: str, dtype: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> None:
        super().__init__(model_path, device, dtype, model, tokenizer)
        self._carried: CausalDecoding | None = None

    @property
    def max_positions(self) -> int:
        """Positions the model has: GPT-2's ``n_positions``, other models' ``max_position_embeddings``."""
        config = self.model.config
        return int(getattr(config, "n_positions", None) or config.max_position_embeddings)

    def begin_decoding(self, input_ids: Sequence[int]) -> Decoding:
        reuse, self._carried = self._carried, None
        return CausalDecoding(self.model, input_ids, self.max_positions, reuse)

    def generation_finished(self, generation: Generation, reply: Reply) -> None:
        super().generation_finished(generation, reply)
        assert isinstance(generation, TransformersGeneration)
        self._carried = generation.decoding if isinstance(generation.decoding, CausalDecoding) else None

    def forget_conversation(self) -> None:
        """Drop the carried key/value cache: the next reply runs its whole prompt."""
        with self._reply_lock:
            self._carried = None


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

    def reply_end_ids(self) -> frozenset[int]:
        return frozenset({self.tokenizer.eos_token_id})

    def decoder_weights(self) -> DecoderWeights | None:
        from zhbench.engines.local.steps.seq2seq import t5_decoder_weights

        return t5_decoder_weights(self.model)

    def begin_decoding(self, input_ids: Sequence[int]) -> Decoding:
        return Seq2SeqDecoding(self.model, input_ids, self.decoder_weights())


def as_ids(tensor: torch.Tensor) -> torch.LongTensor:
    """A tensor of ids, as transformers' logits processors annotate it (``LongTensor``, a legacy torch type)."""
    return cast("torch.LongTensor", tensor)


def as_scores(tensor: torch.Tensor) -> torch.FloatTensor:
    """Next-token scores, as transformers' logits processors annotate them (``FloatTensor``)."""
    return cast("torch.FloatTensor", tensor)
