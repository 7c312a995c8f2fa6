"""EVA2.0's tokenizer: jieba words, then a greedy longest match of each word over ``vocab.txt``.

Follows thu-coai/EVA@a9c15c9 (branch huggingface) ``src/model/tokenization_eva.py`` (``EVATokenizer``,
``WordpieceTokenizer``) as transformers 4.26 ran it: ``encode`` adds ``<sep>``, ``decode`` drops the
special tokens and applies transformers' ``clean_up_tokenization``. Plain Python: upstream's class
no longer loads on transformers 4.34 or later, and nothing here needs transformers.

jieba is imported on first use (it is slow to import); its log lines are silenced, since they would
land on the screen of the full-screen app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from zhbench.engines.errors import ModelLoadError

UNK = "<unk>"
SEP = "<sep>"  # ends every utterance; the model's end token
PAD = "<pad>"
REPLY_START = "<s_0>"  # ends the encoder input and starts the decoder (upstream's bos_token)
SPACE = "\u2582"  # ▂
NEWLINE = "\u2583"  # ▃

# Full-width punctuation folded to ASCII before segmentation (upstream's ``punct_translator``).
_FULL_WIDTH = "！？＂〝〞“”‟＃＄％＆＇‘’‛（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～"
_ASCII = '!?""""""#$%&\'\'\'\'()*+,-/:;<=>@[\\]^_`{|}~'
_PUNCTUATION = str.maketrans(_FULL_WIDTH, _ASCII)
_WHITESPACE = str.maketrans({" ": SPACE, "\n": NEWLINE})
#: upstream's ``max_input_chars_per_word``: a longer jieba word becomes one ``<unk>``
MAX_WORD_CHARS = 200
#: transformers' ``clean_up_tokenization`` (4.26), in its order; upstream's ``decode`` applied it
_CLEAN_UP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


class EvaTokenizer:
    """``vocab.txt`` (one token per line, id = line number) with EVA's segmentation and special tokens."""

    def __init__(self, tokens: Sequence[str], source: Path | str = "vocab.txt") -> None:
        self.tokens = list(tokens)
        # As upstream's dict: a token listed twice keeps its last id.
        self.ids = {token: index for index, token in enumerate(self.tokens)}
        missing = [t for t in (UNK, SEP, PAD, REPLY_START) if t not in self.ids]
        if missing:
            raise ModelLoadError(source, f"not an EVA vocabulary: it lacks {', '.join(missing)}")
        self.unk_id = self.ids[UNK]
        self.sep_id = self.ids[SEP]
        self.pad_id = self.ids[PAD]
        self.reply_start_id = self.ids[REPLY_START]
        self.special_ids = frozenset((self.unk_id, self.sep_id, self.pad_id, self.reply_start_id))
        self._longest = max(len(t) for t in self.tokens)

    @classmethod
    def from_file(cls, path: Path) -> EvaTokenizer:
        try:
            text = path.read_text(encoding="utf-8")  # upstream used the locale's encoding (issue #81)
        except FileNotFoundError:
            raise ModelLoadError(path.parent, f"missing tokenizer file {path.name}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelLoadError(path, f"unreadable vocabulary ({exc})") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the file's final newline ends the last line, it starts none
        return cls([line.strip() for line in lines], path)

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """Upstream's ``_tokenize``: fold punctuation, segment with jieba, match each word greedily."""
        text = text.replace("…", "...").translate(_PUNCTUATION)
        pieces: list[str] = []
        for word in jieba_words(text):
            pieces.extend(self._match_word(word.translate(_WHITESPACE)))
        return pieces

    def _match_word(self, word: str) -> list[str]:
        """Longest vocabulary entry at each position; a character that starts none becomes ``<unk>``."""
        if len(word) > MAX_WORD_CHARS:
            return [UNK]
        pieces = []
        start = 0
        while start < len(word):
            for end in range(min(len(word), start + self._longest), start, -1):
                if word[start:end] in self.ids:
                    pieces.append(word[start:end])
                    start = end
                    break
            else:
                pieces.append(UNK)
                start += 1
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without the ``<sep>`` that upstream's ``encode`` appends.

        Deviation: upstream's tokenizer also read special tokens typed in the text (``<sep>``); here
        the user's text is only ever text.
        """
        return [self.ids[piece] for piece in self.tokenize(text)]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Upstream's ``decode(ids, skip_special_tokens=True)``: ▂ and ▃ back to space and newline."""
        text = "".join(self.tokens[i] for i in ids if i not in self.special_ids)
        text = text.replace(SPACE, " ").replace(NEWLINE, "\n")
        for before, after in _CLEAN_UP:
            text = text.replace(before, after)
        return text

    @staticmethod
    def unsettled_tail(text: str) -> int:
        """How many characters at the end of decoded text a later token could still change.

        The clean-up rewrites ``" ."`` to ``"."`` and so on: a trailing ``" "`` or ``" n"`` is not final.
        """
        for length in range(min(len(text), 3), 0, -1):
            tail = text[-length:]
            if any(before.startswith(tail) and before != tail for before, _ in _CLEAN_UP):
                return length
        return 0


def jieba_words(text: str) -> list[str]:
    """jieba's precise-mode words (``jieba.cut(text, cut_all=False)``), with jieba's logging silenced."""
    import jieba

    jieba.setLogLevel(logging.ERROR)
    return list(jieba.cut(text, cut_all=False))


def prepare_jieba() -> None:
    """Build jieba's dictionary now (about half a second), so the first reply does not wait for it."""
    import jieba

    jieba.setLogLevel(logging.ERROR)
    jieba.initialize()
