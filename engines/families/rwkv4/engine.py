"""ChatRWKV (RWKV-4): a ``.pth`` checkpoint run through the ``rwkv`` package, chatting with a carried state.

Follows BlinkDL/ChatRWKV@9a1eb9a ``v2/chat.py``: the model is ``rwkv.model.RWKV(model, strategy)``, the
tokenizer ``20B_tokenizer.json`` (Pile, Raven) or the package's ``rwkv_vocab_v20230424`` (World); the init
prompt is fed once at load (``chat_init``), and every turn feeds only its own tokens on top of a saved
state (``run_rnn``, ``save_all_stat``/``load_all_stat``). The rules themselves are in ``chat_rules``.

A history the engine did not produce itself (a loaded transcript, a history file) is fed once from
``chat_init``, each segment tokenized as upstream tokenizes it; after that, turns continue the state.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zhbench.engines.api import FamilySpec, LoadOptions
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.families.rwkv4 import memory
from zhbench.engines.families.rwkv4.chat_rules import (
    AVOID_REPEAT,
    CHAT_COMMANDS,
    CHAT_MAX_STEPS,
    DEFAULT_INIT_PROMPT,
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
from zhbench.engines.families.rwkv4.checkpoint import (
    WORLD_VOCAB,
    Rwkv4Shape,
    checkpoint_file,
    choose_tokenizer,
    package_output_captured,
    pipeline_for,
    read_rwkv4_shape,
    rwkv_model_class,
)
from zhbench.engines.families.rwkv4.plan import Rwkv4Prompt, Segment
from zhbench.engines.families.rwkv4.state import FeedRules, Rnn, Snapshot
from zhbench.engines.families.rwkv4.strategy import CUDA_DTYPE, STRATEGY_HELP, resolve_strategy, strategy_placement
from zhbench.engines.local.token_engine import Channels, Generation, TokenEngine
from zhbench.engines.types import GenerationParams, Message, Prompt, Reply, ReplyStats, StopReason


class Rwkv4Generation(Generation):
    """One turn: the settings, whether it is a chat reply, and the state it feeds (once feeding began)."""

    prompt: Rwkv4Prompt

    def __init__(self, engine: Rwkv4Engine, prompt: Rwkv4Prompt, settings: Rwkv4Params, cancel: threading.Event):
        super().__init__(prompt)
        self.engine = engine
        self.settings = settings
        self.cancel = cancel
        self.chat = prompt.turn.kind in (TurnKind.CHAT, TurnKind.REGENERATE)
        self.rnn: Rnn | None = None
        #: a token yielded but not fed yet, with its newline adjustment
        self.pending: tuple[int, float] | None = None

    def tokens(self) -> Iterator[int]:
        return self.engine.token_source(self)

    def text(self, reply_ids: Sequence[int]) -> str:
        text = self.engine.decode(reply_ids)
        return text.lstrip(" ") if self.chat else text  # the space after "Bot:"

    def stop_rule(self, text: str) -> str | None:
        """v2/chat.py@9a1eb9a: a chat reply ends once its text contains a blank line; it is shown stripped."""
        return text.strip() if self.chat and "\n\n" in text else None

    def streamable(self, text: str) -> str:
        return text.rstrip() if self.chat else text  # trailing space may end the reply

    @property
    def fed_tokens(self) -> int:
        return sum(len(segment.ids) for segment in self.prompt.segments)


class Rwkv4Engine(TokenEngine):
    """An RWKV-4 model chatting as ChatRWKV's ``v2/chat.py`` does, its conversation carried in its state."""

    family = "rwkv4"

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
        self.feed_rules = FeedRules(self.end_of_text_id, self.newline_id, self.avoid_repeat_ids)
        # ChatRWKV's saved states (``save_all_stat``): chat_init, chat, chat_pre, gen_0, gen_1
        self._snapshots: dict[str, Snapshot] = {}
        self._init_name: str | None = None
        self._chat_record: tuple[Exchange, ...] = ()  # the exchanges the "chat" snapshot holds
        self._pre_record: tuple[tuple[Exchange, ...], str] | None = None  # what "chat_pre" answers
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
    def from_options(cls, path: Path, options: LoadOptions) -> Rwkv4Engine:
        """``load`` as the registry calls it (``strategy`` among the options)."""
        return cls.load(path, device=options.device, dtype=options.dtype, strategy=options.extra.get("strategy"))

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
            with package_output_captured():
                model = rwkv_class(model=str(checkpoint), strategy=strategy, verbose=False)
            # Building the engine feeds the init prompt: the model's first run, where out-of-memory shows.
            return cls(checkpoint, strategy, model, pipeline_for(word_name), word_name, shape)
        except (RuntimeError, ValueError, AssertionError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(checkpoint, f"the rwkv package cannot run it as {strategy!r} ({reason})") from None

    def details(self) -> dict[str, str]:
        tokenizer = f"{WORLD_VOCAB} (World, bundled with rwkv)" if self.word_name == WORLD_VOCAB else self.word_name
        return {"strategy": self.strategy, "tokenizer": tokenizer}

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

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``. The package's World tokenizer turns the whole text into one U+FFFD when any
        byte sequence in it is not UTF-8 (a character cut in two by a stop, say); here only the bad bytes
        become U+FFFD, as the 20B tokenizer does, so no text is lost and the blank-line rule still sees it."""
        if self.word_name == WORLD_VOCAB:
            data: bytes = self.pipeline.tokenizer.decodeBytes(list(ids))
            return data.decode("utf-8", errors="replace")
        text: str = self.pipeline.decode(list(ids))  # the rwkv package ships no type information
        return text

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
        channels: Channels,
    ) -> Reply:
        turn = parse_user_message(messages[-1]["content"])
        typed = {"temperature": turn.temperature, "top_p": turn.top_p}
        typed = {name: value for name, value in typed.items() if value is not None}
        if typed:  # -temp= / -top_p= in the message: this reply's settings, reported with it
            params = params.with_overrides(typed)
        notice = self._notice_for(turn, messages[:-1])
        if notice is None:
            return super()._run_reply(messages, params, cancel, channels)
        if turn.kind is TurnKind.RESET:  # load_all_stat('chat_init'); save_all_stat('chat')
            self._snapshots["chat"] = self._snapshots["chat_init"].copy()
            self._chat_record = ()
        if channels.text is not None:
            channels.text(notice)
        stats = ReplyStats(0, 0, None, 0.0, 0.0, StopReason.STOP_RULE)
        return Reply(self.family, notice, params, stats, prompt=Rwkv4Prompt("", [], turn=turn))

    def _start_chat(self, init_name: str) -> None:
        """Feed an init prompt from the empty state and save it as ``chat_init`` and ``chat``."""
        rnn = Rnn(self.model, self.feed_rules, None)
        rnn.feed(self._encode(normalized_init_prompt(INIT_PROMPTS[init_name])), 0.0)
        self._keep_chat_init(init_name, rnn)

    def _keep_chat_init(self, init_name: str, rnn: Rnn) -> None:
        self._snapshots["chat_init"] = rnn.now.copy()
        self._snapshots["chat"] = rnn.now.copy()
        self._snapshots.pop("chat_pre", None)
        self._init_name, self._chat_record, self._pre_record = init_name, (), None

    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: threading.Event) -> Generation:
        assert isinstance(prompt, Rwkv4Prompt)
        return Rwkv4Generation(self, prompt, _rwkv4_params(params), cancel)

    def token_source(self, generation: Rwkv4Generation) -> Iterator[int]:
        """``on_message``'s loop: feed the turn's segments, then sample token by token (each fed at once)."""
        import numpy as np

        prompt, settings, chat, cancel = generation.prompt, generation.settings, generation.chat, generation.cancel
        turn = prompt.turn
        start = self._snapshots[prompt.start] if prompt.start is not None else None
        rnn = generation.rnn = Rnn(self.model, self.feed_rules, start)
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
            generation.pending = (token, adjustment)
            yield token
            generation.pending = None
            rnn.feed([token], adjustment)
            # A free generation ends at its first whole character after free_gen_len tokens.
            if not chat and not self.decode(rnn.now.tokens[shown_up_to:]).endswith("\ufffd"):
                shown_up_to = len(rnn.now.tokens)
                if step >= settings.free_gen_len:
                    return

    def generation_finished(self, generation: Generation, reply: Reply) -> None:
        """Save the end state as upstream does: ``chat`` after a chat reply, ``gen_1`` after a free one.

        A stopped reply is kept as far as it went, so the conversation goes on from it without a re-feed.
        """
        assert isinstance(generation, Rwkv4Generation)
        live, rnn = generation, generation.rnn
        if rnn is None or not reply.output_ids:
            return
        if live.pending is not None:  # the reply ended on this token before it was fed
            rnn.feed([live.pending[0]], live.pending[1])
        if live.chat and reply.stats.stop_reason is not StopReason.STOP_RULE:
            # Deviation: a reply stopped or cut at max_new_tokens is closed with the blank line that ends a
            # turn, so the next message starts a turn of its own (upstream's rare 999-token cut left it open).
            rnn.feed(self._encode("\n\n"), 0.0)
        if live.chat:
            self._snapshots["chat"] = rnn.now.copy()
            self._chat_record = (*live.prompt.before, (live.prompt.message, reply.text))
        else:
            self._snapshots["gen_1"] = rnn.now.copy()


def _rwkv4_params(params: GenerationParams) -> Rwkv4Params:
    """RWKV's settings from any params: generic ones keep their values, RWKV's own take upstream's defaults."""
    if isinstance(params, Rwkv4Params):
        return params
    return Rwkv4Params(**{f.name: getattr(params, f.name) for f in dataclasses.fields(GenerationParams)})


FAMILY = FamilySpec(
    name=Rwkv4Engine.family,
    summary="ChatRWKV: RWKV-4 Pile, Raven and World .pth checkpoints through the rwkv package",
    matches_layout=Rwkv4Engine.matches_layout,
    load=Rwkv4Engine.from_options,
    name_hints=("rwkv",),
    load_options={"strategy": STRATEGY_HELP},
    standin="zhbench.engines.standins.rwkv4:write_rwkv4_standin",
    standin_formats=("pth",),
    dtypes={"cuda": CUDA_DTYPE},
    estimate_memory=memory.estimate_memory,
    fallbacks=memory.fallbacks,
)
