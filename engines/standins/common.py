"""Building blocks for tiny random-weight stand-ins written in the real checkpoints' file formats.

No model hub is reachable where zhbench is built and tested, so tests, the offline demo and the
benchmarks run on stand-ins that each family's builder (``FamilySpec.standin``) writes with these
helpers. They go through exactly the loading code a real checkpoint goes through; no model is ever
loaded through this package.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.registry import STANDIN_MARKER

if TYPE_CHECKING:
    import torch


# Common characters and phrases, enough for tokenizers trained here to learn Chinese pieces.
_PHRASES = (  # noqa: SIM905 (a word list reads best as one string)
    "你好 您好 谢谢 再见 今天 天气 怎么样 什么 为什么 可以 我们 他们 中国 北京 上海 问题 答案 用户 小元 问答 学习 工作 "
    "生活 时间 朋友 喜欢 知道 觉得 一个 没有 这个 那个 事情 电影 音乐 吃饭 睡觉 明天 昨天 公司 创始人 小米 "
    "阿里巴巴 总部 哪里 企鹅 会飞 翅膀 游泳 平衡 飞行 文章 摘要 翻译 英文 中文 分类 情感 积极 消极 "
    "hello world how are you fine thanks the a is of to and in that it for on with as"
).split()
_PUNCTUATION = "，。！？、；：“”‘’（）《》【】…—～·,.!?;:'\"()[]-_\\/@#%&*+=<>0123456789\t"


def chinese_corpus(lines: int = 600, seed: int = 0) -> list[str]:
    """Deterministic training text: phrases, punctuation, and every CJK character once."""
    rng = random.Random(seed)
    corpus = []
    for _ in range(lines):
        words = rng.choices(_PHRASES, k=rng.randint(3, 12))
        corpus.append("".join(w + rng.choice(("", "", "，", "。", "？", " ", "\\n")) for w in words))
    corpus.append(_PUNCTUATION)
    cjk = "".join(chr(c) for c in range(0x4E00, 0xA000))
    corpus.extend(cjk[i : i + 64] for i in range(0, len(cjk), 64))
    return corpus


def bert_chinese_vocab() -> list[str]:
    """A BERT-Chinese style ``vocab.txt``: specials at bert-base-chinese's ids, ``##`` pieces, the CJK block."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper()]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += list("，。！？、；：“”‘’（）《》【】…—～·")
    vocab += [chr(c) for c in range(0x4E00, 0xA000)]
    return list(dict.fromkeys(vocab))


def train_byte_level_bpe(folder: Path, *, vocab_size: int = 2000, end_token: str = "<|endoftext|>") -> None:
    """Write GPT-2 style ``vocab.json``, ``merges.txt`` and ``tokenizer.json``; the end token's id is the last."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    tokenizer.train_from_iterator(chinese_corpus(), vocab_size=vocab_size, show_progress=False)
    tokenizer.add_special_tokens([end_token])
    tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer.save_model(str(folder))
    vocab_path = folder / "vocab.json"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    vocab[end_token] = len(vocab)
    write_json(vocab_path, vocab)


def train_sentencepiece(folder: Path, *, vocab_size: int = 24000) -> None:
    """Write a unigram ``spiece.model`` with T5's special ids (pad 0, eos 1, unk 2, no bos)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(chinese_corpus()),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
    )
    (folder / "spiece.model").write_bytes(model.getvalue())


def random_gpt2_state(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A random GPT-2 state dict (tied head, as real GPT-2 checkpoints) that does not just echo its input.

    With tied embeddings a random GPT-2 predicts the token it was fed (its own embedding dominates
    the logits), so a stand-in would end every reply at once; larger position embeddings break that.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    known = {k: v for k, v in config.items() if k not in ("architectures", "bos_token_id", "eos_token_id")}
    # The weights do not depend on the end ids, and GPT2Config's default ones (50256) lie outside a
    # stand-in's vocabulary: transformers would warn about them on every make-tiny.
    model = GPT2LMHeadModel(GPT2Config(**known, bos_token_id=None, eos_token_id=None))
    with torch.no_grad():
        model.transformer.wpe.weight.normal_(0.0, 0.1)
    return model.state_dict()


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def save_weights(state: dict[str, torch.Tensor], folder: Path, weights_format: str) -> None:
    """``pytorch_model.bin`` (a torch pickle, as the seed checkpoints ship) or ``model.safetensors``."""
    import torch

    if weights_format == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    elif weights_format == "safetensors":
        from safetensors.torch import save_file

        # safetensors stores no shared memory: keep one copy of each tensor, as converted checkpoints do.
        seen: set[int] = set()
        unique = {}
        for name, tensor in state.items():
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                unique[name] = tensor.contiguous()
        save_file(unique, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        raise ValueError(f"unknown weights format {weights_format!r} (expected bin or safetensors)")


def mark_standin(folder: Path, family: str) -> None:
    write_json(
        folder / STANDIN_MARKER, {"family": family, "weights": "random", "note": "tiny stand-in made by zhbench"}
    )
