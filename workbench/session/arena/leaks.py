"""Identity leaks: a reply that names its maker ("我是通义千问", "I am ChatGPT") unblinds a battle.

Such battles are kept but left out of the ranking by default, as FastChat's ``clean_battle_data.py`` does
with its ``IDENTITY_WORDS``. The list here is zhbench's default, aimed at the models a Chinese user meets;
the config's ``maker_names`` adds more.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from zhbench.engines.types import Message

#: names of models and of the companies behind them, as they appear in replies
DEFAULT_MAKER_NAMES: tuple[str, ...] = (
    # Alibaba
    "通义",
    "千问",
    "Qwen",
    "阿里云",
    "Alibaba",
    # Zhipu / Tsinghua KEG
    "智谱",
    "ChatGLM",
    "GLM",
    "Zhipu",
    # DeepSeek
    "深度求索",
    "DeepSeek",
    # OpenBMB / ModelBest
    "MiniCPM",
    "面壁智能",
    "OpenBMB",
    # Moonshot
    "Kimi",
    "月之暗面",
    "Moonshot",
    # Baichuan
    "百川",
    "Baichuan",
    # Baidu
    "文心一言",
    "文心大模型",
    "ERNIE Bot",
    # others met in Chinese arenas
    "讯飞星火",
    "iFlytek",
    "零一万物",
    "01.AI",
    "书生·浦语",
    "InternLM",
    "混元",
    "Hunyuan",
    "豆包",
    "Doubao",
    "ChatYuan",
    "元语智能",
    "PromptCLUE",
    "RWKV",
    "DialoGPT",
    # the usual suspects of any arena
    "OpenAI",
    "ChatGPT",
    "GPT-4",
    "GPT-3.5",
    "Claude",
    "Anthropic",
    "Gemini",
    "Google Bard",
    "LLaMA",
    "Mistral",
)


def maker_names(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The default names, then the config's ``extra`` ones (blank and repeated names dropped)."""
    names: dict[str, None] = {}
    for name in (*DEFAULT_MAKER_NAMES, *extra):
        if name.strip():
            names.setdefault(name.strip(), None)
    return tuple(names)


def names_in_reply(text: str, names: Sequence[str] = DEFAULT_MAKER_NAMES) -> list[str]:
    """The ``names`` that ``text`` mentions, each once, in the order they first appear.

    Case and full-width letters do not matter ("ｑｗｅｎ" is Qwen). A Latin name counts only as a word of its
    own ("Kimi" is not in "Kimiko", "GLM" is not in "ChatGLM" but "Qwen2" is Qwen); a Chinese name anywhere.
    """
    pattern, canonical = _matcher(tuple(names))
    found: dict[str, None] = {}
    for match in pattern.finditer(_folded(text)):
        found.setdefault(canonical[match.group()], None)
    return list(found)


def names_in_conversation(turns: Iterable[Message], names: Sequence[str] = DEFAULT_MAKER_NAMES) -> list[str]:
    """The ``names`` that the assistant's messages of a conversation mention (the user may name anyone)."""
    found: dict[str, None] = {}
    for message in turns:
        if message["role"] == "assistant":
            found.update(dict.fromkeys(names_in_reply(message["content"], names)))
    return list(found)


def _folded(text: str) -> str:
    # NFKC turns full-width Latin letters and digits into ASCII; casefold makes "QWEN" and "qwen" one name.
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=8)
def _matcher(names: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regular expression for all ``names`` (longest first, so "ChatGPT" wins over "GPT-4"'s prefix),
    and the name each folded match stands for."""
    canonical = {_folded(name): name for name in names if name.strip()}
    alternatives = [_word(folded) for folded in sorted(canonical, key=len, reverse=True)]
    return re.compile("|".join(alternatives) or "(?!)"), canonical


def _word(folded: str) -> str:
    """A name as a pattern: Latin ends must not touch other Latin letters."""
    before = r"(?<![a-z])" if folded[0].isascii() and folded[0].isalpha() else ""
    after = r"(?![a-z])" if folded[-1].isascii() and folded[-1].isalpha() else ""
    return before + re.escape(folded) + after
