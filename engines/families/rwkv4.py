"""ChatRWKV (RWKV-4): a ``.pth`` checkpoint run through the ``rwkv`` package, chatting with a carried state.

Follows BlinkDL/ChatRWKV@9a1eb9a ``v2/chat.py``: the model is ``rwkv.model.RWKV(model, strategy)``, the
tokenizer ``20B_tokenizer.json`` (Pile, Raven) or the package's ``rwkv_vocab_v20230424`` (World); the init
prompt is fed once at load (``chat_init``), and every turn feeds only its own tokens on top of a saved
state (``run_rnn``, ``save_all_stat``/``load_all_stat``). The rules themselves are in ``rwkv4_chat``.

A history the engine did not produce itself (a loaded transcript, a history file) is fed once from
``chat_init``, each segment tokenized as upstream tokenizes it; after that, turns continue the state.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gc
import io
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.base import Engine, TextCallback
from engines.checkpoints import load_weight_file
from engines.devices import resolve_device, resolve_dtype
from engines.errors import ModelLoadError, ZhbenchError
from engines.families.rwkv4_chat import (
    AVOID_REPEAT,
    CHAT_COMMANDS,
    CHAT_MAX_STEPS,
    DEFAULT_INIT_PROMPT,
    FEED_CHUNK,
    FREE_GEN_EXTRA_STEPS,
    INIT_PROMPTS,
    NEVER,
    QA_NEWLINE_ADJUSTMENT,
    Exchange,
    Rwkv4Params,
    TurnKind,
    UserTurn,
    apply_penalties,
    chat_exchanges,
    chat_message_text,
    count_occurrence,
    free_prompt_text,
    newline_adjustment,
    normalized_init_prompt,
    parse_user_message,
    past_reply_text,
    rwkv4_defaults,
    sample_logits,
)
from engines.standins import chinese_corpus, mark_standin
from engines.types import GenerationParams, Message, Prompt, Reply, ReplyStats, StopReason

if TYPE_CHECKING:
    import torch

#: the World models' vocabulary (``rwkv_vocab_v20230424``, bundled with the rwkv package)
WORLD_VOCAB = "rwkv_vocab_v20230424"
WORLD_VOCAB_SIZE = 65536
#: the Pile/Raven tokenizer's file name, as in the ChatRWKV repository (it is not in the pip package)
PILE_TOKENIZER = "20B_tokenizer.json"
#: an environment variable naming a tokenizer file to use instead of the one beside the checkpoint
TOKENIZER_ENV = "ZHBENCH_RWKV_TOKENIZER"

# rwkv 0.8.32 model.py's strategy grammar, less the i4/i3 suffixes it accepts but does not implement for v4.
STRATEGY_PATTERN = re.compile(
    r"^(?:(?:^|->) *(?:cuda(?::\d+)?|cpu|mps|dml) (?:fp16|fp32|bf16)(?:i8)?(?: \*\d+\+?)? *)+$"
)
STRATEGY_HELP = (
    "a strategy is one or more stages 'DEVICE TYPE [*LAYERS[+]]' joined by '->', DEVICE one of cpu, cuda, "
    "cuda:N, mps, dml and TYPE one of fp32, fp16, bf16, optionally with i8 (8-bit weights); for example "
    "'cuda fp16', 'cpu fp32', 'cuda fp16i8 *10 -> cuda fp16', 'cuda fp16i8 *10+'"
)
_STRATEGY_TYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
_DTYPES = {value: key for key, value in _STRATEGY_TYPES.items()}

# RWKV-4 keys of one block: name -> shape with the size-1 axes left out, in terms of C (n_embd),
# A (n_att) and F (n_ffn), as rwkv/model.py reads them for version 4.
_BLOCK_SHAPES = {
    "ln1.weight": "C",
    "ln1.bias": "C",
    "ln2.weight": "C",
    "ln2.bias": "C",
    "att.time_decay": "A",
    "att.time_first": "A",
    "att.time_mix_k": "C",
    "att.time_mix_v": "C",
    "att.time_mix_r": "C",
    "att.key.weight": "AC",
    "att.value.weight": "AC",
    "att.receptance.weight": "AC",
    "att.output.weight": "CA",
    "ffn.time_mix_k": "C",
    "ffn.time_mix_r": "C",
    "ffn.key.weight": "FC",
    "ffn.receptance.weight": "CC",
    "ffn.value.weight": "CF",
}
_LATER_VERSIONS = {"ln_x": "RWKV-5", "gate.weight": "RWKV-5.1", "time_maa": "RWKV-6", "time_faaaa": "RWKV-6"}


# --- strategy ----------------------------------------------------------------------------------


def resolve_strategy(strategy: str | None, device: str | None, dtype: str | None) -> str:
    """The strategy to load with: ``strategy`` (checked), else one made from ``device`` and ``dtype``:
    ``cuda fp16`` when torch sees a GPU, ``cpu fp32`` without (ChatRWKV's own defaults)."""
    import torch

    if strategy is None:
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device, cuda_default="float16")
        return f"{device} {_STRATEGY_TYPES[dtype]}"
    text = " ".join(strategy.split())
    if not STRATEGY_PATTERN.match(text):
        raise ZhbenchError(f"invalid RWKV strategy {strategy!r}: {STRATEGY_HELP}")
    if "cuda" in text and not torch.cuda.is_available():
        raise ZhbenchError(f"strategy {text!r} asks for CUDA, but torch sees no CUDA GPU (use 'cpu fp32')")
    return text


def strategy_placement(strategy: str) -> tuple[str, str]:
    """The device and dtype of a strategy's first stage, e.g. ``("cuda", "float16")``."""
    device, kind = strategy.split("->")[0].split()[:2]
    dtype = _DTYPES[kind.removesuffix("i8")]
    return device, dtype + (" (8-bit weights)" if kind.endswith("i8") else "")


# --- checkpoint and tokenizer ------------------------------------------------------------------


def checkpoint_file(path: Path) -> Path:
    """The ``.pth`` file at ``path``, or the only one in the folder ``path``."""
    if path.is_file():
        if path.suffix != ".pth":
            raise ModelLoadError(path, "not an RWKV checkpoint (expected a .pth file)")
        return path
    found = sorted(path.glob("*.pth"))
    if len(found) != 1:
        hint = "; pass the .pth file itself" if found else ""
        raise ModelLoadError(path, f"expected exactly one .pth checkpoint in the folder, found {len(found)}{hint}")
    return found[0]


@dataclass(frozen=True)
class Rwkv4Shape:
    vocab_size: int
    n_embd: int
    n_layer: int
    parameters: int


def read_rwkv4_shape(checkpoint: Path) -> Rwkv4Shape:
    """Check that a checkpoint holds every RWKV-4 weight in its shape (safely: no code runs), and size it."""
    weights = load_weight_file(checkpoint)
    for marker, version in _LATER_VERSIONS.items():
        if any(marker in name for name in weights):
            raise ModelLoadError(checkpoint, f"a {version} checkpoint (it has {marker}); this family runs RWKV-4")
    for name in ("emb.weight", "head.weight", "ln_out.weight", "ln_out.bias", "blocks.0.ln0.weight"):
        if name not in weights:
            raise ModelLoadError(checkpoint, f"weights lack {name}")
    for name in ("blocks.0.att.key.weight", "blocks.0.ffn.key.weight"):
        if name not in weights:
            raise ModelLoadError(checkpoint, f"weights lack {name}")
    vocab_size, n_embd = weights["emb.weight"].shape
    sizes = {
        "C": n_embd,
        "A": weights["blocks.0.att.key.weight"].shape[0],
        "F": weights["blocks.0.ffn.key.weight"].shape[0],
    }
    n_layer = 1 + max(int(name.split(".")[1]) for name in weights if name.startswith("blocks."))
    expected = {"head.weight": (vocab_size, n_embd), "ln_out.weight": (n_embd,), "ln_out.bias": (n_embd,)}
    expected |= {"blocks.0.ln0.weight": (n_embd,), "blocks.0.ln0.bias": (n_embd,)}
    for layer in range(n_layer):
        for name, axes in _BLOCK_SHAPES.items():
            expected[f"blocks.{layer}.{name}"] = tuple(sizes[axis] for axis in axes)
    for name, shape in expected.items():
        if name not in weights:
            raise ModelLoadError(checkpoint, f"weights lack {name}")
        actual = tuple(weights[name].shape)
        if tuple(size for size in actual if size != 1) != tuple(size for size in shape if size != 1):
            raise ModelLoadError(checkpoint, f"weight {name} has shape {actual}, expected {shape} (n_embd {n_embd})")
    parameters = sum(t.numel() for t in weights.values())
    return Rwkv4Shape(int(vocab_size), int(n_embd), n_layer, int(parameters))


def choose_tokenizer(checkpoint: Path, vocab_size: int) -> str:
    """The ``PIPELINE`` word name for a checkpoint, picked by its vocabulary size.

    65536 ids: a World model, whose vocabulary ships with the rwkv package. Otherwise the tokenizer file
    named by ``ZHBENCH_RWKV_TOKENIZER``, else ``20B_tokenizer.json`` beside the checkpoint, whose size
    must be the checkpoint's (Pile and Raven models: 50277).
    """
    if vocab_size == WORLD_VOCAB_SIZE:
        return WORLD_VOCAB
    configured = os.environ.get(TOKENIZER_ENV)
    path = Path(configured).expanduser() if configured else checkpoint.parent / PILE_TOKENIZER
    if not path.is_file():
        where = f"{TOKENIZER_ENV}={configured}" if configured else f"{PILE_TOKENIZER} beside the checkpoint"
        raise ModelLoadError(
            checkpoint,
            f"no tokenizer for its {vocab_size}-id vocabulary: Pile and Raven models need {PILE_TOKENIZER} "
            f"(from the ChatRWKV repository; not in the rwkv package), looked for {where}; "
            f"World models have {WORLD_VOCAB_SIZE} ids and use the package's {WORLD_VOCAB}",
        )
    from tokenizers import Tokenizer

    try:
        size = Tokenizer.from_file(str(path)).get_vocab_size()
    except Exception as exc:  # tokenizers raises its own Exception type for a broken file
        raise ModelLoadError(path, f"unreadable tokenizer ({str(exc).splitlines()[0]})") from None
    if size != vocab_size:
        raise ModelLoadError(
            path, f"the tokenizer has {size} ids but the checkpoint {checkpoint.name} has {vocab_size}"
        )
    return str(path.resolve())


_OUTPUT_CAPTURE_LOCK = threading.RLock()  # re-entrant: the import happens inside a load's capture


@contextlib.contextmanager
def _package_output_captured() -> Iterator[None]:
    """The rwkv package prints and warns while importing and loading; keep that off the screen the app draws."""
    captured = io.StringIO()
    # The redirection is process-wide: two loads at once must not restore each other's streams.
    with (
        _OUTPUT_CAPTURE_LOCK,
        contextlib.redirect_stdout(captured),
        contextlib.redirect_stderr(captured),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def rwkv_model_class() -> Any:
    """``rwkv.model.RWKV``, imported with upstream's switches set first (``RWKV_V7_ON`` is never set)."""
    if os.environ.get("RWKV_V7_ON") == "1":
        raise ZhbenchError("RWKV_V7_ON=1 is set: the rwkv package then runs RWKV-7 models only; unset it")
    os.environ.setdefault("RWKV_JIT_ON", "1")  # v2/chat.py's settings; the environment may override them
    os.environ.setdefault("RWKV_CUDA_ON", "0")  # '1' compiles the CUDA kernel (needs a compiler)
    with _package_output_captured():
        from rwkv.model import RWKV
    if RWKV.__name__ != "RWKV":
        raise ZhbenchError("rwkv.model was imported with RWKV_V7_ON=1 (RWKV-7 only); restart without it")
    return RWKV


@functools.cache
def pipeline_for(word_name: str) -> Any:
    """``rwkv.utils.PIPELINE``'s tokenizer for a word name, built once per process and shared."""
    with _package_output_captured():
        from rwkv.utils import PIPELINE

        pipeline = PIPELINE(None, word_name)
    if word_name == WORLD_VOCAB:
        # The World TRIE is half a million Python objects kept for good; freezing them spares every later
        # full collection (RWKV's loader runs several) from walking them again.
        gc.freeze()
    return pipeline


# --- state --------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """``save_all_stat``: the logits for the next token, the RNN state and every token fed to reach it."""

    logits: torch.Tensor | None
    state: list[torch.Tensor] | None
    tokens: list[int]

    def copy(self) -> Snapshot:
        """A deep copy: ``model.forward`` changes the state it is given in place."""
        logits = None if self.logits is None else self.logits.clone()
        return Snapshot(logits, copy.deepcopy(self.state), list(self.tokens))


class _Rnn:
    """``run_rnn`` and the state it works on, for one reply."""

    def __init__(self, engine: Rwkv4Engine, start: Snapshot | None) -> None:
        self._engine = engine
        self.now = start.copy() if start is not None else Snapshot(None, None, [])

    def feed(self, ids: Sequence[int], newline_adjustment: float, cancel: threading.Event | None = None) -> bool:
        """Feed ``ids`` and adjust the next logits as ``run_rnn``; False when cancelled part-way."""
        if not ids:
            return True
        engine, now = self._engine, self.now
        out = None
        for start in range(0, len(ids), FEED_CHUNK):
            if cancel is not None and cancel.is_set():
                return False
            chunk = [int(token) for token in ids[start : start + FEED_CHUNK]]
            out, now.state = engine.model.forward(chunk, now.state)
            now.tokens += chunk
        assert out is not None
        out[engine.end_of_text_id] = NEVER  # <|endoftext|> is never sampled
        out[engine.newline_id] += newline_adjustment
        if now.tokens[-1] in engine.avoid_repeat_ids:
            out[now.tokens[-1]] = NEVER
        now.logits = out
        return True


@dataclass(frozen=True)
class Segment:
    """Text fed in one ``run_rnn`` call, tokenized on its own as upstream tokenizes it."""

    role: str  # "init", "user" (a chat message), "reply" (a past reply), "free" (a free-generation prompt)
    ids: tuple[int, ...]


@dataclass(frozen=True)
class Rwkv4Prompt(Prompt):
    """A turn's plan: the state to start from, the segments to feed on top of it, and what to keep.

    ``input_ids`` is everything the model has consumed by the end of the feed (the start state's tokens
    and the segments); only the segments are fed this turn.
    """

    turn: UserTurn
    start: str | None = None  # a snapshot name, or None for the empty state
    segments: tuple[Segment, ...] = ()
    init_prompt: str = DEFAULT_INIT_PROMPT
    before: tuple[Exchange, ...] = ()  # the chat exchanges under the message being answered
    message: str = ""  # the chat message being answered, as typed


@dataclass
class _LiveReply:
    prompt: Rwkv4Prompt
    rnn: _Rnn
    chat: bool
    pending: tuple[int, float] | None = None  # a token yielded but not fed yet, with its newline adjustment


# --- engine -------------------------------------------------------------------------------------


class Rwkv4Engine(Engine):
    """An RWKV-4 model chatting as ChatRWKV's ``v2/chat.py`` does, its conversation carried in its state."""

    family = "rwkv4"
    name_hints = ("rwkv",)
    takes_strategy = True

    def __init__(self, checkpoint: Path, strategy: str, model: Any, pipeline: Any, word_name: str, shape: Rwkv4Shape):
        device, dtype = strategy_placement(strategy)
        super().__init__(checkpoint, device, dtype)
        self.strategy = strategy
        self.model = model
        self.pipeline = pipeline
        self.word_name = word_name
        self.shape = shape
        self.newline_id = self._single_token("\n")
        self.avoid_repeat_ids = frozenset(self._single_token(character) for character in AVOID_REPEAT)
        token_to_id = getattr(pipeline.tokenizer, "token_to_id", None)
        end_of_text = token_to_id("<|endoftext|>") if token_to_id is not None else None
        self.end_of_text_id = 0 if end_of_text is None else int(end_of_text)  # World: id 0
        self._snapshots: dict[str, Snapshot] = {}
        self._init_name: str | None = None
        self._chat_record: tuple[Exchange, ...] = ()  # the exchanges the "chat" snapshot holds
        self._pre_record: tuple[tuple[Exchange, ...], str] | None = None  # what "chat_pre" answers
        self._live: _LiveReply | None = None
        self._start_chat(DEFAULT_INIT_PROMPT)

    def _single_token(self, text: str) -> int:
        ids = self.pipeline.encode(text)
        if len(ids) != 1:  # upstream asserts this for AVOID_REPEAT
            raise ModelLoadError(self.model_path, f"the tokenizer encodes {text!r} as {len(ids)} tokens, not one")
        return int(ids[0])

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".pth"
        return path.is_dir() and len(list(path.glob("*.pth"))) == 1

    @classmethod
    def load(
        cls, path: Path, *, device: str | None = None, dtype: str | None = None, strategy: str | None = None
    ) -> Rwkv4Engine:
        checkpoint = checkpoint_file(path)
        strategy = resolve_strategy(strategy, device, dtype)
        shape = read_rwkv4_shape(checkpoint)
        word_name = choose_tokenizer(checkpoint, shape.vocab_size)
        rwkv_class = rwkv_model_class()
        try:
            with _package_output_captured():
                model = rwkv_class(model=str(checkpoint), strategy=strategy, verbose=False)
            # Building the engine feeds the init prompt: the model's first run, where out-of-memory shows.
            return cls(checkpoint, strategy, model, pipeline_for(word_name), word_name, shape)
        except (RuntimeError, ValueError, AssertionError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(checkpoint, f"the rwkv package cannot run it as {strategy!r} ({reason})") from None

    def describe(self) -> dict[str, Any]:
        tokenizer = f"{WORLD_VOCAB} (World, bundled with rwkv)" if self.word_name == WORLD_VOCAB else self.word_name
        return {**super().describe(), "strategy": self.strategy, "tokenizer": tokenizer}

    def parameter_count(self) -> int:
        return self.shape.parameters

    def weight_bytes(self) -> int:
        # The package keeps every weight, converted as the strategy asks, in ``model.w``.
        return sum(t.numel() * t.element_size() for t in self.model.w.values())

    # --- what a family provides -------------------------------------------------------------

    def default_params(self) -> GenerationParams:
        return rwkv4_defaults()

    def chat_commands(self) -> dict[str, str]:
        return dict(CHAT_COMMANDS)

    def computes_on_cpu(self) -> bool:
        return "cpu" in self.strategy  # any stage on the CPU: e.g. "cuda fp16 *10 -> cpu fp32"

    def fed_token_count(self, prompt: Prompt) -> int:
        if isinstance(prompt, Rwkv4Prompt):
            return sum(len(segment.ids) for segment in prompt.segments)
        return len(prompt.input_ids)

    def is_end_token(self, token_id: int) -> bool:
        return False  # <|endoftext|> is never sampled: a reply ends by the blank line or by its length

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``. The package's World tokenizer turns the whole text into one U+FFFD when any
        byte sequence in it is not UTF-8 (a character cut in two by a stop, say); here only the bad bytes
        become U+FFFD, as the 20B tokenizer does, so no text is lost and the blank-line rule still sees it."""
        if self.word_name == WORLD_VOCAB:
            return self.pipeline.tokenizer.decodeBytes(list(ids)).decode("utf-8", errors="replace")
        return self.pipeline.decode(list(ids))

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        text = self.decode(output_ids)
        live = self._live
        return text.lstrip(" ") if live is not None and live.chat else text  # the space after "Bot:"

    def stop_rule(self, text: str) -> str | None:
        """v2/chat.py@9a1eb9a: a chat reply ends once its text contains a blank line; it is shown stripped."""
        live = self._live
        if live is not None and live.chat and "\n\n" in text:
            return text.strip()
        return None

    def streamable(self, text: str) -> str:
        live = self._live
        return text.rstrip() if live is not None and live.chat else text  # trailing space may end the reply

    def forget_conversation(self) -> None:
        """Drop the carried chat (not ``chat_init``): the next reply feeds its history again, once."""
        with self._reply_lock:
            self._snapshots["chat"] = self._snapshots["chat_init"].copy()
            self._chat_record, self._pre_record = (), None
            self._snapshots.pop("chat_pre", None)

    # --- planning a turn --------------------------------------------------------------------

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        settings = _rwkv4_params(params)
        init = INIT_PROMPTS[settings.init_prompt]
        turn = parse_user_message(history[-1]["content"])
        past = history[:-1]
        notice = self._notice_for(turn, past)
        if notice is not None:
            return Rwkv4Prompt(text="", input_ids=[], turn=turn)
        init_changed = settings.init_prompt != self._init_name
        init_segments = (Segment("init", self._encode(normalized_init_prompt(init))),) if init_changed else ()
        start: str | None
        before: tuple[Exchange, ...] = ()
        message = ""
        if turn.kind in (TurnKind.CHAT, TurnKind.REGENERATE):
            exchanges = chat_exchanges(past)
            if turn.kind is TurnKind.REGENERATE:
                before, message = exchanges[:-1], exchanges[-1][0]
            else:
                before, message = exchanges, history[-1]["content"]
            asked = Segment("user", self._encode(chat_message_text(init, parse_user_message(message).text)))
            if init_changed:
                start, segments = None, (*init_segments, *self._exchange_segments(before, settings), asked)
            elif (before, message) == self._pre_record:
                start, segments = "chat_pre", ()
            elif before == self._chat_record:
                start, segments = "chat", (asked,)
            else:
                start, segments = "chat_init", (*self._exchange_segments(before, settings), asked)
        elif turn.kind in (TurnKind.GEN, TurnKind.QQ, TurnKind.INSTRUCT):
            start, segments = None, (Segment("free", self._encode(free_prompt_text(turn, init))),)
        elif turn.kind is TurnKind.QA:
            asked = Segment("free", self._encode(free_prompt_text(turn, init)))
            start, segments = (None, (*init_segments, asked)) if init_changed else ("chat_init", (asked,))
        elif turn.kind is TurnKind.RETRY:
            start, segments = "gen_0", ()
        else:  # CONTINUE
            start, segments = "gen_1", ()
        ids = list(self._snapshots[start].tokens) if start is not None else []
        for segment in segments:
            ids += segment.ids
        return Rwkv4Prompt(
            text=self.decode(ids),
            input_ids=ids,
            turn=turn,
            start=start,
            segments=segments,
            init_prompt=settings.init_prompt,
            before=before,
            message=message,
        )

    def _encode(self, text: str) -> tuple[int, ...]:
        return tuple(int(token) for token in self.pipeline.encode(text)) if text else ()

    def _exchange_segments(self, exchanges: Sequence[Exchange], settings: Rwkv4Params) -> list[Segment]:
        """Past exchanges as upstream's state took them in: the message's ``run_rnn``, then the reply."""
        init = INIT_PROMPTS[settings.init_prompt]
        segments = []
        for message, reply in exchanges:
            segments.append(Segment("user", self._encode(chat_message_text(init, parse_user_message(message).text))))
            segments.append(Segment("reply", self._encode(past_reply_text(reply))))
        return segments

    def _notice_for(self, turn: UserTurn, past: Sequence[Message]) -> str | None:
        """The short answer to a command that generates nothing.

        Deviation: upstream prints "Chat reset." for ``+reset`` but returns silently from ``+``, ``++`` and
        ``+++`` with nothing to act on; a pane needs some answer, so these say why nothing was generated.
        """
        free_start = "start one with +gen, +qq, +qa or +i"
        if turn.kind is TurnKind.RESET:
            return "Chat reset."
        if turn.kind is TurnKind.REGENERATE and not chat_exchanges(past):
            return "Nothing to regenerate yet: send a message first."
        if turn.kind is TurnKind.RETRY and "gen_0" not in self._snapshots:
            return f"No free generation to retry yet: {free_start}."
        if turn.kind is TurnKind.CONTINUE and "gen_1" not in self._snapshots:
            return f"No free generation to continue yet: {free_start}."
        return None

    # --- running a turn ---------------------------------------------------------------------

    def _run_reply(
        self,
        messages: list[Message],
        params: GenerationParams,
        cancel: threading.Event,
        on_text: TextCallback | None,
    ) -> Reply:
        turn = parse_user_message(messages[-1]["content"])
        typed = {"temperature": turn.temperature, "top_p": turn.top_p}
        typed = {name: value for name, value in typed.items() if value is not None}
        if typed:  # -temp= / -top_p= in the message: this reply's settings, reported with it
            params = dataclasses.replace(params, **typed)
        notice = self._notice_for(turn, messages[:-1])
        if notice is None:
            return super()._run_reply(messages, params, cancel, on_text)
        if turn.kind is TurnKind.RESET:  # load_all_stat('chat_init'); save_all_stat('chat')
            self._snapshots["chat"] = self._snapshots["chat_init"].copy()
            self._chat_record = ()
        if on_text is not None:
            on_text(notice)
        stats = ReplyStats(0, 0, None, 0.0, 0.0, StopReason.STOP_RULE)
        return Reply(self.family, notice, [], params, stats, None, Rwkv4Prompt("", [], turn=turn))

    def _start_chat(self, init_name: str) -> None:
        """Feed an init prompt from the empty state and save it as ``chat_init`` and ``chat``."""
        rnn = _Rnn(self, None)
        rnn.feed(self._encode(normalized_init_prompt(INIT_PROMPTS[init_name])), 0.0)
        self._keep_chat_init(init_name, rnn)

    def _keep_chat_init(self, init_name: str, rnn: _Rnn) -> None:
        self._snapshots["chat_init"] = rnn.now.copy()
        self._snapshots["chat"] = rnn.now.copy()
        self._snapshots.pop("chat_pre", None)
        self._init_name, self._chat_record, self._pre_record = init_name, (), None

    def _token_source(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Iterator[int]:
        import numpy as np

        assert isinstance(prompt, Rwkv4Prompt)
        settings = _rwkv4_params(params)
        turn = prompt.turn
        chat = turn.kind in (TurnKind.CHAT, TurnKind.REGENERATE)
        rnn = _Rnn(self, self._snapshots[prompt.start] if prompt.start is not None else None)
        live = self._live = _LiveReply(prompt, rnn, chat)
        for index, segment in enumerate(prompt.segments):
            last = index == len(prompt.segments) - 1
            if not rnn.feed(segment.ids, NEVER if chat and last else 0.0, cancel):
                return
            if segment.role == "init":
                self._keep_chat_init(prompt.init_prompt, rnn)
        if chat and prompt.start != "chat_pre":
            self._snapshots["chat_pre"] = rnn.now.copy()
            self._pre_record = (prompt.before, prompt.message)
        elif not chat and prompt.start != "gen_0":  # a new free generation, or +++ (gen_1 becomes gen_0)
            self._snapshots["gen_0"] = rnn.now.copy()

        rng = np.random.RandomState((settings.seed or 0) % 2**32)
        occurrence: dict[int, float] = {}
        steps = CHAT_MAX_STEPS if chat else settings.free_gen_len + FREE_GEN_EXTRA_STEPS
        shown_up_to = len(rnn.now.tokens)
        for step in range(steps):
            assert rnn.now.logits is not None
            logits = rnn.now.logits.clone()
            apply_penalties(logits, occurrence, settings.presence_penalty, settings.frequency_penalty)
            if settings.greedy:
                token = int(logits.argmax())
            else:
                token = sample_logits(
                    logits, temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k, rng=rng
                )
            count_occurrence(occurrence, token, self.newline_id)
            if chat:
                adjustment = newline_adjustment(step)
            else:
                adjustment = QA_NEWLINE_ADJUSTMENT if turn.kind is TurnKind.QA else 0.0
            live.pending = (token, adjustment)
            yield token
            live.pending = None
            rnn.feed([token], adjustment)
            # A free generation ends at its first whole character after free_gen_len tokens.
            if not chat and not self.decode(rnn.now.tokens[shown_up_to:]).endswith("\ufffd"):
                shown_up_to = len(rnn.now.tokens)
                if step >= settings.free_gen_len:
                    return

    def _reply_finished(self, prompt: Prompt, reply: Reply) -> None:
        """Save the end state as upstream does: ``chat`` after a chat reply, ``gen_1`` after a free one.

        A stopped reply is kept as far as it went, so the conversation goes on from it without a re-feed.
        """
        live, self._live = self._live, None
        if live is None or live.prompt is not prompt or not reply.output_ids:
            return
        if live.pending is not None:  # the reply ended on this token before it was fed
            live.rnn.feed([live.pending[0]], live.pending[1])
        if live.chat and reply.stats.stop_reason is not StopReason.STOP_RULE:
            # Deviation: a reply stopped or cut at max_new_tokens is closed with the blank line that ends a
            # turn, so the next message starts a turn of its own (upstream's rare 999-token cut left it open).
            live.rnn.feed(self._encode("\n\n"), 0.0)
        if live.chat:
            self._snapshots["chat"] = live.rnn.now.copy()
            self._chat_record = (*live.prompt.before, (live.prompt.message, reply.text))
        else:
            self._snapshots["gen_1"] = live.rnn.now.copy()

    # --- stand-ins --------------------------------------------------------------------------

    @classmethod
    def write_standin(cls, folder: Path, *, weights_format: str = "bin", vocabulary: str = "pile") -> Path:
        """A tiny RWKV-4 ``.pth`` with ``20B_tokenizer.json`` beside it (a small byte-level BPE in the real
        file's format), or with ``vocabulary="world"`` a 65536-id World model (the package has its vocabulary)."""
        import torch

        if weights_format not in ("bin", "pth"):
            raise ValueError(f"rwkv4 checkpoints are .pth files (torch.save); no {weights_format} stand-in")
        folder.mkdir(parents=True, exist_ok=True)
        if vocabulary == "world":
            vocab_size, name = WORLD_VOCAB_SIZE, "RWKV-4-World-tiny-standin.pth"
        elif vocabulary == "pile":
            vocab_size, name = train_pile_style_tokenizer(folder / PILE_TOKENIZER), "RWKV-4-Pile-tiny-standin.pth"
        else:
            raise ValueError(f"unknown vocabulary {vocabulary!r} (expected pile or world)")
        torch.save(random_rwkv4_state(vocab_size, n_embd=16 if vocabulary == "world" else 32), folder / name)
        mark_standin(folder, cls.family)
        return folder


def _rwkv4_params(params: GenerationParams) -> Rwkv4Params:
    """RWKV's settings from any params: generic ones keep their values, RWKV's own take upstream's defaults."""
    if isinstance(params, Rwkv4Params):
        return params
    return Rwkv4Params(**{f.name: getattr(params, f.name) for f in dataclasses.fields(GenerationParams)})


def train_pile_style_tokenizer(path: Path, *, vocab_size: int = 2000) -> int:
    """A byte-level BPE saved as a ``tokenizers`` JSON like ``20B_tokenizer.json`` (NFC, ``<|endoftext|>`` 0,
    ``<|padding|>`` 1), trained so that ``\\n``, ``\\n\\n`` and ``，。：？！`` are single tokens; returns its size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    lines = chinese_corpus()
    chat_lines = [f"User: {a}\n\nBot: {b}：{a}！{b}？\n\n" for a, b in zip(lines[:300], lines[300:600], strict=True)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*lines, *chat_lines], trainer)
    tokenizer.save(str(path))
    return tokenizer.get_vocab_size()


def random_rwkv4_state(vocab_size: int, *, n_embd: int = 32, n_layer: int = 2) -> dict[str, torch.Tensor]:
    """Random RWKV-4 weights in the checkpoint's key names and shapes (bf16, as the released files)."""
    import torch

    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    c = n_embd
    state = {
        "emb.weight": randn(vocab_size, c),
        "blocks.0.ln0.weight": torch.ones(c),
        "blocks.0.ln0.bias": torch.zeros(c),
    }
    for layer in range(n_layer):
        block = f"blocks.{layer}."
        for norm in ("ln1", "ln2"):
            state[f"{block}{norm}.weight"], state[f"{block}{norm}.bias"] = torch.ones(c), torch.zeros(c)
        state[block + "att.time_decay"] = randn(c, scale=1.0)
        state[block + "att.time_first"] = randn(c, scale=1.0)
        for name in ("att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "ffn.time_mix_k", "ffn.time_mix_r"):
            state[block + name] = torch.rand(1, 1, c, generator=generator)
        for name in ("key", "value", "receptance", "output"):
            state[f"{block}att.{name}.weight"] = randn(c, c, scale=c**-0.5)
        state[block + "ffn.key.weight"] = randn(4 * c, c, scale=c**-0.5)
        state[block + "ffn.receptance.weight"] = randn(c, c, scale=c**-0.5)
        state[block + "ffn.value.weight"] = randn(c, 4 * c, scale=(4 * c) ** -0.5)
    state["ln_out.weight"], state["ln_out.bias"] = torch.ones(c), torch.zeros(c)
    state["head.weight"] = randn(vocab_size, c, scale=0.5)
    return {name: tensor.to(torch.bfloat16) for name, tensor in state.items()}
