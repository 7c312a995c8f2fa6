"""ChatRWKV's chat rules for RWKV-4, as small pure functions: init prompts, messages, commands, sampling.

Follows BlinkDL/ChatRWKV@9a1eb9a ``v2/chat.py`` (2023-03-08, the era of RWKV-4-Pile-7B-Instruct-test2)
and its ``v2/prompt/default/*.py``, with the sampler of the rwkv pip package 0.8.32 ``rwkv/utils.py``
(``PIPELINE.sample_logits``). Two later upstream additions are taken on purpose and named where used:
the ``+i`` command and the cleaning of the user's text (ChatRWKV@HEAD ``v2/chat.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from zhbench.engines.types import (
    MAX_NEW_TOKENS,
    GenerationParams,
    Message,
    choice_field,
    failed_checks,
    finite_number,
    whole_number,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

# v2/chat.py@9a1eb9a constants
CHAT_LEN_SHORT = 40
CHAT_LEN_LONG = 150
FREE_GEN_LEN = 200
CHAT_MAX_STEPS = 999  # ``for i in range(999)`` in the chat loop
FREE_GEN_EXTRA_STEPS = 100  # ``range(FREE_GEN_LEN + 100)``: room to end on a whole character
AVOID_REPEAT = "，。：？！"
NEVER = -999999999.0  # upstream's "never sample this" logit adjustment
QA_NEWLINE_ADJUSTMENT = -2.0  # ``+qa`` runs every step with ``newline_adj=-2``
FEED_CHUNK = 256  # later upstream (CHUNK_LEN, 2023-03-22) feeds long prompts in chunks; the era fed all at once


@dataclass(frozen=True)
class InitPrompt:
    """One of upstream's ``v2/prompt/default/*.py`` files: who speaks, and the conversation fed first."""

    user: str
    bot: str
    text: str
    interface: str = ":"


INIT_PROMPTS: dict[str, InitPrompt] = {
    # v2/prompt/default/Chinese-2.py@9a1eb9a, verbatim (the era's Chinese chat prompt)
    "Chinese-2": InitPrompt(
        "User",
        "Bot",
        """
The following is a verbose and detailed conversation between an AI assistant called Bot, and a human user called User. Bot is intelligent, knowledgeable, wise and polite.

User: wat is lhc

Bot: LHC is a high-energy particle collider, built by CERN, and completed in 2008. They used it to confirm the existence of the Higgs boson in 2012.

User: 企鹅会飞吗

Bot: 企鹅是不会飞的。它们的翅膀主要用于游泳和平衡，而不是飞行。
""",  # noqa: E501 (upstream's line)
    ),
    # Deviation: English-2 and English-1 are zhbench's own text in the shape of upstream's files
    # (English-2: Bob and a girl named Alice, an introduction and example exchanges; English-1: User/Bot
    # questions and answers), not upstream's wording.
    "English-2": InitPrompt(
        "Bob",
        "Alice",
        """
The following is a long, verbose and detailed conversation between Bob and a girl named Alice. Alice is clever, warm and curious, and she answers Bob thoughtfully and in detail.

Bob: Hi Alice, how has your day been?

Alice: Hello Bob! It has been lovely, thank you. I spent the morning reading. How about yours?

Bob: Quite good. Do you have a few minutes to talk?

Alice: Of course! What is on your mind?
""",  # noqa: E501
    ),
    # v2/prompt/default/Chinese-1.py@9a1eb9a, verbatim
    "Chinese-1": InitPrompt(
        "Q",
        "A",
        """
Expert Questions & Helpful Answers

Ask Research Experts
""",
    ),
    "English-1": InitPrompt(
        "User",
        "Bot",
        """
Below, User asks questions and Bot, a knowledgeable AI assistant, answers them accurately and briefly.

User: At what temperature does water boil at sea level?

Bot: Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level.

User: Who wrote Pride and Prejudice?

Bot: Jane Austen wrote Pride and Prejudice; it was published in 1813.
""",
    ),
    # No init prompt: the chat starts from an empty state.
    "none": InitPrompt("User", "Bot", ""),
}
DEFAULT_INIT_PROMPT = "Chinese-2"

# ChatRWKV@HEAD v2/chat.py ``+i``: an Alpaca-style instruction, generated from an empty state.
INSTRUCT_TEMPLATE = (
    "\nBelow is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n# Instruction:\n{instruction}\n\n# Response:\n"
)

CHAT_COMMANDS: dict[str, str] = {
    "+reset": "start the chat again from the init prompt",
    "+": "another reply to the last message",
    "+gen TEXT": "free generation continuing TEXT (chat context ignored)",
    "+qq TEXT": "free generation of an answer to 'Q: TEXT' (chat context ignored)",
    "+qa TEXT": "free generation of the bot's answer to TEXT after the init prompt only",
    "+i TEXT": "free generation following an instruction (Alpaca template)",
    "++": "retry the last free generation",
    "+++": "continue the last free generation",
    "-temp=X": "inside a message: the temperature of this reply (0.2 to 5)",
    "-top_p=X": "inside a message: the top_p of this reply",
}


@dataclass(frozen=True)
class Rwkv4Params(GenerationParams):
    """ChatRWKV's settings. ``temperature`` is applied after the top-p cut (as the rwkv package does),
    ``top_k`` 0 is off, ``seed`` seeds numpy's sampler, ``greedy`` takes the most likely token, and
    ``max_new_tokens`` caps every reply. RWKV has ``presence_penalty`` and ``frequency_penalty`` where others
    have ``repetition_penalty`` and ``no_repeat_ngram_size``, and no beam search (``num_beams``,
    ``length_penalty``): those four are refused unless left at their defaults.
    ``init_prompt`` is a key of ``INIT_PROMPTS``; ``free_gen_len`` is how long ``+gen``/``+qq``/``+qa``/``+i``
    run (then up to 100 more tokens, to end on a whole character)."""

    presence_penalty: float = 0.2
    frequency_penalty: float = 0.2
    init_prompt: str = choice_field(DEFAULT_INIT_PROMPT, INIT_PROMPTS)
    free_gen_len: int = FREE_GEN_LEN

    fixed_settings: ClassVar[frozenset[str]] = frozenset(
        {"repetition_penalty", "num_beams", "length_penalty", "no_repeat_ngram_size"}
    )
    fixed_because: ClassVar[str] = "ChatRWKV's sampler does not use it"
    prompt_settings: ClassVar[frozenset[str]] = frozenset({"init_prompt"})

    def problems(self) -> dict[str, str]:
        own = [
            finite_number("presence_penalty", self.presence_penalty),
            finite_number("frequency_penalty", self.frequency_penalty),
            whole_number("free_gen_len", self.free_gen_len, 1, MAX_NEW_TOKENS),
        ]
        return {**super().problems(), **failed_checks(own)}


def rwkv4_defaults() -> Rwkv4Params:
    """v2/chat.py@9a1eb9a: ``GEN_TEMP = 1.0``, ``GEN_TOP_P = 0.85``, presence and frequency 0.2; the chat
    loop runs at most 999 steps."""
    return Rwkv4Params(temperature=1.0, top_p=0.85, top_k=0, max_new_tokens=CHAT_MAX_STEPS)


def normalized_init_prompt(prompt: InitPrompt) -> str:
    """v2/chat.py@9a1eb9a: each line stripped (spaces, U+3000, ``\\r``), then ``'\\n' + … + '\\n\\n'``.

    An empty prompt (``none``) stays empty: nothing is fed before the first message.
    """
    if not prompt.text.strip():
        return ""
    lines = [line.strip().strip("\u3000").strip("\r") for line in prompt.text.strip().split("\n")]
    return "\n" + "\n".join(lines).strip() + "\n\n"


class TurnKind(StrEnum):
    CHAT = "chat"  # a message to the bot
    RESET = "reset"  # +reset
    REGENERATE = "regenerate"  # +
    GEN = "gen"  # +gen TEXT
    QQ = "qq"  # +qq TEXT
    QA = "qa"  # +qa TEXT
    INSTRUCT = "instruct"  # +i TEXT
    RETRY = "retry"  # ++
    CONTINUE = "continue"  # +++


@dataclass(frozen=True)
class UserTurn:
    kind: TurnKind
    text: str  # the chat message, or the command's argument, cleaned
    temperature: float | None = None  # from -temp=, clamped as upstream
    top_p: float | None = None  # from -top_p=


def parse_user_message(message: str) -> UserTurn:
    """v2/chat.py@9a1eb9a ``on_message``: a typed ``\\n`` becomes a newline, then ``-temp=``/``-top_p=``
    are taken out and the command is recognised (case-insensitively, as upstream).

    Deviation: upstream removes ``-temp=`` followed by the value re-formatted with ``:g`` (so ``-temp=0.50``
    stayed in the message) and does not strip again; here the typed text is removed and the rest stripped.
    A value that is not a finite number leaves the text in the message (upstream raised).
    """
    msg = message.replace("\\n", "\n").strip()
    msg, temperature = _take_setting(msg, "-temp=")
    msg, top_p = _take_setting(msg, "-top_p=")
    if temperature is not None:
        temperature = min(max(temperature, 0.2), 5.0)
    if top_p is not None:
        top_p = max(top_p, 0.0)
    lowered = msg.lower()
    kind, text = TurnKind.CHAT, clean_chat_text(msg)
    if msg == "+reset":
        kind, text = TurnKind.RESET, ""
    elif lowered[:5] == "+gen ":
        kind, text = TurnKind.GEN, msg[5:].strip()
    elif lowered[:3] == "+i ":
        kind, text = TurnKind.INSTRUCT, clean_chat_text(msg[3:])
    elif lowered[:4] == "+qq ":
        kind, text = TurnKind.QQ, msg[4:].strip()
    elif lowered[:4] == "+qa ":
        kind, text = TurnKind.QA, msg[4:].strip()
    elif lowered == "+++":
        kind, text = TurnKind.CONTINUE, ""
    elif lowered == "++":
        kind, text = TurnKind.RETRY, ""
    elif lowered == "+":
        kind, text = TurnKind.REGENERATE, ""
    return UserTurn(kind, text, temperature, top_p)


def _take_setting(msg: str, flag: str) -> tuple[str, float | None]:
    if flag not in msg:
        return msg, None
    typed = msg.split(flag, 1)[1].split(" ")[0]
    try:
        value = float(typed)
    except ValueError:
        return msg, None
    if not math.isfinite(value):
        return msg, None
    return msg.replace(flag + typed, "").strip(), value


def clean_chat_text(text: str) -> str:
    """ChatRWKV@HEAD v2/chat.py: ``strip()``, ``\\r\\n`` → ``\\n``, ``\\n\\n`` → ``\\n`` (``\\n\\n`` ends a turn).

    Deviation: upstream replaces ``\\n\\n`` once, which leaves a blank line from three newlines; here
    until none is left.
    """
    text = text.strip().replace("\r\n", "\n")
    while "\n\n" in text:
        text = text.replace("\n\n", "\n")
    return text


def chat_message_text(prompt: InitPrompt, message: str) -> str:
    """``f"{user}{interface} {msg}\\n\\n{bot}{interface}"``, e.g. ``User: 你好\\n\\nBot:``."""
    return f"{prompt.user}{prompt.interface} {message}\n\n{prompt.bot}{prompt.interface}"


def past_reply_text(reply: str) -> str:
    """A past reply as it follows ``{bot}:`` in the state: the space, the reply, the blank line that ended it."""
    return f" {reply}\n\n"


def free_prompt_text(turn: UserTurn, prompt: InitPrompt) -> str:
    """What a free-generation command feeds (v2/chat.py@9a1eb9a; ``+i`` from HEAD)."""
    if turn.kind is TurnKind.GEN:
        return "\n" + turn.text
    if turn.kind is TurnKind.QQ:
        return "\nQ: " + turn.text + "\nA:"
    if turn.kind is TurnKind.QA:
        return chat_message_text(prompt, turn.text)
    if turn.kind is TurnKind.INSTRUCT:
        return INSTRUCT_TEMPLATE.format(instruction=turn.text)
    raise ValueError(f"{turn.kind.value} feeds no prompt")


Exchange = tuple[str, str]  # (the user's message as typed, the reply as shown)


def chat_exchanges(messages: Sequence[Message]) -> tuple[Exchange, ...]:
    """The exchanges a chat state holds after ``messages``, replaying the commands as upstream applies them.

    ``+reset`` empties the chat, ``+`` replaces the last reply, free generations leave the chat alone,
    and a user message with no reply after it (a failed or stopped reply) is not part of it.
    """
    exchanges: list[Exchange] = []
    pending: str | None = None
    for message in messages:
        if message["role"] == "user":
            pending = message["content"]
            continue
        if pending is None:
            continue
        kind = parse_user_message(pending).kind
        if kind is TurnKind.RESET:
            exchanges = []
        elif kind is TurnKind.REGENERATE:
            if exchanges:
                exchanges[-1] = (exchanges[-1][0], message["content"])
        elif kind is TurnKind.CHAT:
            exchanges.append((pending, message["content"]))
        pending = None
    return tuple(exchanges)


def newline_adjustment(step: int) -> float:
    """v2/chat.py@9a1eb9a: added to the ``\\n`` logit after feeding the reply's ``step``-th token: no
    newline at first, less likely up to 40 tokens, neutral to 150, then ever more likely."""
    if step <= 0:
        return NEVER
    if step <= CHAT_LEN_SHORT:
        return (step - CHAT_LEN_SHORT) / 10
    if step <= CHAT_LEN_LONG:
        return 0.0
    return (step - CHAT_LEN_LONG) * 0.25


def apply_penalties(logits: torch.Tensor, occurrence: dict[int, float], presence: float, frequency: float) -> None:
    """v2/chat.py@9a1eb9a: ``out[n] -= presence + occurrence[n] * frequency`` for every token seen
    (in one indexed subtraction: the same float32 results as upstream's loop, without its cost per token)."""
    import torch

    if occurrence:
        tokens = torch.tensor(list(occurrence), device=logits.device)
        amounts = torch.tensor([presence + count * frequency for count in occurrence.values()], dtype=logits.dtype)
        logits[tokens] -= amounts.to(logits.device)


def count_occurrence(occurrence: dict[int, float], token: int, newline_id: int) -> None:
    """v2/chat.py@9a1eb9a: count the sampled token; the newline's count stays 0 (presence still applies)."""
    occurrence[token] = occurrence.get(token, 0) + 1
    occurrence[newline_id] = 0


def sample_logits(
    logits: torch.Tensor, *, temperature: float, top_p: float, top_k: int, rng: np.random.RandomState
) -> int:
    """The rwkv package's CPU sampler (0.8.32 ``PIPELINE.sample_logits``), with a generator of its own.

    Softmax; keep the tokens at least as likely as the one where the cumulative probability reaches
    ``top_p``; keep the ``top_k`` most likely if set; only then apply the temperature; renormalise and
    draw with numpy. ``np.random.seed(s)`` followed by the package's function draws the same token as
    this with ``np.random.RandomState(s)``.

    Deviations: the package draws from numpy's global generator on the CPU and with ``torch.multinomial``
    on a GPU; here every reply has its own numpy generator on any device, so seeds reproduce everywhere
    and two engines sampling at once do not disturb each other. The era's package (0.2.0) cut where the
    cumulative probability passed ``top_p`` (``>``); this is the installed package's rule (``>=``).
    """
    import numpy as np
    import torch

    probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    order = np.argsort(probs)
    descending = probs[order][::-1]
    cutoff = float(descending[np.argmax(np.cumsum(descending) >= top_p)])
    probs[probs < cutoff] = 0
    if 0 < top_k < len(probs):
        probs[order[:-top_k]] = 0
    if temperature != 1.0:
        probs = probs ** (1.0 / temperature)
    probs = probs / np.sum(probs)
    return int(rng.choice(a=len(probs), p=probs))
