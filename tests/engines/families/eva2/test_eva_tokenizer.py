"""EVA2.0's tokenizer on the real ``vocab.txt``: ids of Chinese text, and decoding back to text."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhbench.engines.errors import ModelLoadError
from zhbench.engines.families.eva2.tokenizer import EvaTokenizer

REAL_VOCAB = Path(__file__).resolve().parents[5] / "shared" / "data" / "eva2-vocab.txt"
needs_real_vocab = pytest.mark.skipif(not REAL_VOCAB.is_file(), reason="../shared/data/eva2-vocab.txt is absent")


@pytest.fixture(scope="module")
def tokenizer() -> EvaTokenizer:
    return EvaTokenizer.from_file(REAL_VOCAB)


def line_ids(*tokens: str) -> list[int]:
    """Each token's line number in the real vocab file, read independently of the tokenizer."""
    lines = REAL_VOCAB.read_text(encoding="utf-8").split("\n")
    return [lines.index(token) for token in tokens]


@needs_real_vocab
def test_special_tokens_sit_at_the_published_ids(tokenizer):
    assert len(tokenizer) == 30000
    assert (tokenizer.unk_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.reply_start_id) == (0, 4, 5, 29810)
    assert tokenizer.encode("你好") == [5503]  # upstream's EVATokenizer gives [5503, 4] with its <sep>


@needs_real_vocab
def test_chinese_with_full_width_punctuation(tokenizer):
    # jieba: 你好 / ， / 今天 / 天气 / 怎么样 / ？; "怎么样" is not in the vocab, so the longest match splits it.
    assert tokenizer.encode("你好，今天天气怎么样？") == line_ids("你好", ",", "今天", "天气", "怎么", "样", "?")
    assert tokenizer.encode("“好的”！") == line_ids('"', "好", "的", '"', "!")


@needs_real_vocab
def test_spaces_and_newlines_become_their_own_tokens(tokenizer):
    ids = tokenizer.encode("我 喜欢\n音乐")
    assert ids == line_ids("我", "\u2582", "喜", "欢", "\u2583", "音乐")
    assert ids[1] == 10 and ids[4] == 3
    assert tokenizer.encode("hello world…") == line_ids("hello", "\u2582", "world", "...")


@needs_real_vocab
@pytest.mark.parametrize(
    "text, decoded",
    [
        ("你好，今天天气怎么样？", "你好,今天天气怎么样?"),
        ("我 喜欢\n音乐！", "我 喜欢\n音乐!"),
        ("第一行\n\n第二行  两个空格", "第一行\n\n第二行  两个空格"),
        ("EVA2.0 是什么？", "EVA2.0 是什么?"),
    ],
)
def test_round_trip_folds_punctuation_and_keeps_spaces_and_newlines(tokenizer, text, decoded):
    assert tokenizer.decode(tokenizer.encode(text)) == decoded


@needs_real_vocab
def test_decoding_drops_special_tokens_and_cleans_up_like_upstream(tokenizer):
    ids = [tokenizer.reply_start_id, *tokenizer.encode("你好"), tokenizer.sep_id, tokenizer.pad_id]
    assert tokenizer.decode(ids) == "你好"
    # transformers' clean-up, which upstream's decode applied: " ." -> "."
    assert tokenizer.decode(line_ids("好", "\u2582", ".")) == "好."


#: upstream's EVATokenizer (thu-coai/EVA@a9c15c9) on transformers 4.26.1 with the real vocab.txt:
#: ``encode(text)`` without its final ``<sep>``, and ``decode(ids, skip_special_tokens=True)``
UPSTREAM_ENCODE = {
    "tab\t分隔": [11102, 0, 16251],
    "数字123和English混合 abc def!": [1783, 9478, 28, 15331, 3214, 10, 19847, 10, 19515, 51],
    "😀表情符号": [0, 3291, 5510],
    "I don't know. It's fine , right ?": [
        827,
        10,
        11167,
        839,
        1884,
        10,
        9278,
        42,
        10,
        8242,
        839,
        271,
        10,
        13456,
        873,
        10,
        9,
        10,
        8807,
        10,
        27,
    ],
    "全角ＡＢＣ１２３": [278, 783, 0, 0, 0, 0, 0, 0],
    "……省略号": [2891, 13337, 490],
    "（括号）［方括号］｛花括号｝": [30, 468, 490, 29, 175, 234, 468, 490, 174, 1430, 534, 468, 490, 1428],
}
UPSTREAM_DECODE = [([9, 10, 9], ",,"), ([11, 10, 64], "的..."), ([10, 27], "?"), ([5503, 10, 3, 10, 9], "你好 \n,")]


@needs_real_vocab
def test_ids_and_text_are_upstreams(tokenizer):
    for text, ids in UPSTREAM_ENCODE.items():
        assert tokenizer.encode(text) == ids, text
    for ids, text in UPSTREAM_DECODE:
        assert tokenizer.decode(ids) == text


def test_unknown_characters_become_unk_and_long_words_one_unk():
    tokenizer = EvaTokenizer(["<unk>", "<sep>", "<pad>", "<s_0>", "a", "ab", "abc", "b"])
    assert tokenizer.tokenize("abcab") == ["abc", "ab"]
    assert tokenizer.tokenize("xa") == ["<unk>", "a"]
    assert tokenizer.tokenize("a" * 201) == ["<unk>"]


def test_a_vocabulary_without_the_special_tokens_is_refused(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("<unk>\n<sep>\n<pad>\n你\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"vocab\.txt: not an EVA vocabulary: it lacks <s_0>"):
        EvaTokenizer.from_file(vocab)
    with pytest.raises(ModelLoadError, match=r"missing tokenizer file vocab\.txt"):
        EvaTokenizer.from_file(tmp_path / "absent" / "vocab.txt")


def test_only_a_tail_the_clean_up_could_still_change_is_held_back():
    assert EvaTokenizer.unsettled_tail("你好 ") == 1
    assert EvaTokenizer.unsettled_tail("I do n") == 2
    assert EvaTokenizer.unsettled_tail("你好") == 0
    assert EvaTokenizer.unsettled_tail("好.") == 0
