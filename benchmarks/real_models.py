"""Random-weight stand-ins at the published models' real sizes, written on demand under ``benchmarks/models/``.

No model hub is reachable here, so the benchmarks run on models with the seed models' configurations
(layers, widths, vocabulary sizes, positions) and random weights, in the files the real checkpoints ship:
``pytorch_model.bin`` for the transformers models, fp16 ``pytorch_model.bin`` for EVA2.0, a bf16 ``.pth``
for RWKV-4. They load through exactly the code a downloaded checkpoint goes through. Never committed
(``benchmarks/models/`` is ignored); ``python benchmarks/real_models.py`` writes them all.

Tokenizers are the tiny stand-ins' (trained here) brought to the real vocabulary size: the BERT vocabulary
cut to gpt2-dialogbot's 13317 ids, the byte-level BPE of DialoGPT padded to GPT-2's 50257 ids, T5's
SentencePiece vocabulary padded with extra ids to 32128; RWKV-4 uses the real ``20B_tokenizer.json``
(50277 ids) when ``../shared/data`` has it, else the World vocabulary the ``rwkv`` package ships (65536).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhbench.engines.families.rwkv4.checkpoint import PILE_TOKENIZER
from zhbench.engines.registry import write_standin
from zhbench.engines.standins.clue_t5 import random_clue_t5_state
from zhbench.engines.standins.common import mark_standin, random_gpt2_state, save_weights, write_json
from zhbench.engines.standins.eva2 import write_random_checkpoint
from zhbench.engines.standins.rwkv4 import random_rwkv4_state

MODELS = Path(__file__).resolve().parent / "models"
SHARED_PILE_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "data" / "20B_tokenizer.json"
WORLD_VOCAB_SIZE = 65536


@dataclass(frozen=True)
class RealModel:
    name: str  # the published model it stands in for
    family: str
    write: Callable[[Path], None]

    def path(self) -> Path:
        """The stand-in's folder, written first if it is not there yet."""
        folder = MODELS / f"real-{self.name}"
        if not folder.exists():
            scratch = folder.with_name(folder.name + ".partial")
            shutil.rmtree(scratch, ignore_errors=True)
            self.write(scratch)
            mark_standin(scratch, self.family)
            scratch.rename(folder)
        return folder


def tiny(family: str) -> Path:
    folder = MODELS / family
    if not folder.is_dir():
        write_standin(family, folder)
    return folder


def _copy_tokenizer(family: str, folder: Path) -> dict:
    """The tiny stand-in's files without its weights; returns its config."""
    shutil.copytree(tiny(family), folder, ignore=shutil.ignore_patterns("*.bin", "*.safetensors"))
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _gpt2(family: str, sizes: dict[str, int], vocab_size: int) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        config = {**_copy_tokenizer(family, folder), **sizes, "vocab_size": vocab_size}
        if (folder / "vocab.txt").is_file():  # BERT-Chinese: keep the first ids (specials, ASCII, common CJK)
            lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()[:vocab_size]
            (folder / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:  # byte-level BPE: filler tokens (plain ASCII, so they decode) up to the real size
            vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
            vocab.update({f"zhbenchfill{i}": i for i in range(len(vocab), vocab_size)})
            write_json(folder / "vocab.json", vocab)
            (folder / "tokenizer.json").unlink()  # rebuilt from vocab.json and merges.txt
        write_json(folder / "config.json", config)
        save_weights(random_gpt2_state(config), folder, "bin")

    return write


def _t5(family: str, sizes: dict[str, int]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        import transformers

        config = {**_copy_tokenizer(family, folder), **sizes, "vocab_size": 32128}
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        words = len(transformers.T5Tokenizer.from_pretrained(str(folder)))
        write_json(folder / "tokenizer_config.json", {**tokenizer_config, "extra_ids": 32128 - words})
        write_json(folder / "config.json", config)
        save_weights(random_clue_t5_state(config), folder, "bin")

    return write


def _eva(sizes: dict[str, int]) -> Callable[[Path], None]:
    return lambda folder: write_random_checkpoint(folder, sizes)


def _rwkv(n_embd: int, n_layer: int, name: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        import torch

        folder.mkdir(parents=True)
        if SHARED_PILE_TOKENIZER.is_file():
            shutil.copy(SHARED_PILE_TOKENIZER, folder / PILE_TOKENIZER)
            vocab_size, kind = 50277, "Pile"
        else:
            vocab_size, kind = WORLD_VOCAB_SIZE, "World"
        state = random_rwkv4_state(vocab_size, n_embd=n_embd, n_layer=n_layer)
        torch.save(state, folder / f"RWKV-4-{kind}-{name}-standin.pth")

    return write


#: the seed models at their published sizes (ChatRWKV's at two of RWKV-4's sizes)
REAL_MODELS = {
    model.name: model
    for model in (
        RealModel(
            "gpt2-dialogbot-base-chinese",
            "gpt2-dialogbot",
            _gpt2("gpt2-dialogbot", {"n_layer": 10, "n_embd": 768, "n_head": 12, "n_positions": 300}, 13317),
        ),
        RealModel(  # DialoGPT-small
            "chat-DialoGPT-small-zh",
            "dialogpt-zh",
            _gpt2("dialogpt-zh", {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024}, 50257),
        ),
        RealModel(  # T5 v1.1 base with gated gelu
            "PromptCLUE-base-v1-5",
            "promptclue",
            _t5(
                "promptclue",
                {"d_model": 768, "d_ff": 2048, "d_kv": 64, "num_heads": 12, "num_layers": 12, "num_decoder_layers": 12},
            ),
        ),
        RealModel(
            "ChatYuan-large-v1",
            "chatyuan",
            _t5(
                "chatyuan",
                {
                    "d_model": 1024,
                    "d_ff": 2816,
                    "d_kv": 64,
                    "num_heads": 16,
                    "num_layers": 24,
                    "num_decoder_layers": 24,
                },
            ),
        ),
        RealModel(
            "EVA2.0-base",
            "eva2",
            _eva(
                {"d_model": 768, "d_ff": 3072, "d_kv": 64, "num_heads": 12, "num_layers": 12, "num_decoder_layers": 12}
            ),
        ),
        RealModel("RWKV-4-430M", "rwkv4", _rwkv(1024, 24, "430M")),
        RealModel("RWKV-4-1.5B", "rwkv4", _rwkv(2048, 24, "1B5")),
    )
}


if __name__ == "__main__":
    for model in REAL_MODELS.values():
        print(model.name, model.path(), flush=True)
