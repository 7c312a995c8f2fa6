"""Reading an RWKV-4 checkpoint safely, choosing its tokenizer, and importing the rwkv package quietly."""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.local.checkpoints import lacking_weights, load_weight_file

WORLD_VOCAB = "rwkv_vocab_v20230424"
WORLD_VOCAB_SIZE = 65536
#: the Pile/Raven tokenizer's file name, as in the ChatRWKV repository (it is not in the pip package)
PILE_TOKENIZER = "20B_tokenizer.json"
#: an environment variable naming a tokenizer file to use instead of the one beside the checkpoint
TOKENIZER_ENV = "ZHBENCH_RWKV_TOKENIZER"

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
            raise lacking_weights(checkpoint, [name])
    for name in ("blocks.0.att.key.weight", "blocks.0.ffn.key.weight"):
        if name not in weights:
            raise lacking_weights(checkpoint, [name])
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
            raise lacking_weights(checkpoint, [name])
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
def package_output_captured() -> Iterator[None]:
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
    with package_output_captured():
        from rwkv.model import RWKV
    if RWKV.__name__ != "RWKV":
        raise ZhbenchError("rwkv.model was imported with RWKV_V7_ON=1 (RWKV-7 only); restart without it")
    return RWKV


@functools.cache
def pipeline_for(word_name: str) -> Any:
    """``rwkv.utils.PIPELINE``'s tokenizer for a word name, built once per process and shared."""
    with package_output_captured():
        from rwkv.utils import PIPELINE

        pipeline = PIPELINE(None, word_name)
    if word_name == WORLD_VOCAB:
        # The World TRIE is half a million Python objects kept for good; freezing them spares every later
        # full collection (RWKV's loader runs several) from walking them again.
        gc.freeze()
    return pipeline

