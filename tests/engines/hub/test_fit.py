"""The memory-fit estimate's arithmetic, on the stand-ins' real files."""

from __future__ import annotations

import pickle
import zipfile

import pytest

from zhbench.engines.api import LoadOptions, MemoryNeed
from zhbench.engines.families.rwkv4.memory import rwkv_stages
from zhbench.engines.hub.fit import estimate_need, fallbacks, judge_fit
from zhbench.engines.local.footprint import (
    CPU_OVERHEAD_BYTES,
    CUDA_OVERHEAD_BYTES,
    DEFAULT_CONTEXT_CAP,
    ENCODER_DECODER_CONTEXT,
    kv_cache_bytes,
    weight_tensors,
    weights_bytes,
)
from zhbench.engines.registry import family_spec

RWKV4 = family_spec("rwkv4")

QWEN_05B = {
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896,
    "max_position_embeddings": 32768,
}  # fmt: skip


def test_weights_are_counted_from_the_headers_alike_in_safetensors_and_bin(standin_dir):
    safetensors = weight_tensors(standin_dir("gpt2-dialogbot", "safetensors"))
    pickled = weight_tensors(standin_dir("gpt2-dialogbot", "bin"))
    file_size = (standin_dir("gpt2-dialogbot", "safetensors") / "model.safetensors").stat().st_size
    assert weights_bytes(safetensors, "float32") == weights_bytes(pickled, "float32")
    assert 0.99 < weights_bytes(safetensors, "float32") / file_size <= 1.0  # the file is the fp32 weights
    assert weights_bytes(safetensors, "bfloat16") == weights_bytes(safetensors, "float32") // 2


def test_tied_weights_in_a_torch_checkpoint_are_counted_once(tmp_path):
    import torch

    shared = torch.zeros(100, 10)
    state = {"wte.weight": shared, "lm_head.weight": shared, "mask": torch.zeros(4, dtype=torch.bool)}
    torch.save(state, tmp_path / "w.bin")
    tensors = weight_tensors(tmp_path / "w.bin")
    assert set(tensors) == {"wte.weight", "lm_head.weight", "mask"}
    assert weights_bytes(tensors, "float32") == 100 * 10 * 4 + 4  # the bool buffer stays one byte a value
    assert weights_bytes(tensors, "float16") == 100 * 10 * 2 + 4


def test_reading_a_checkpoint_runs_none_of_its_pickle(tmp_path):
    class Bomb:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": Bomb()}, protocol=2))
    assert weight_tensors(path) == {}  # nothing that is a tensor, and print was never called


def test_kv_cache_of_a_grouped_query_model_at_a_capped_context():
    cache, positions = kv_cache_bytes(QWEN_05B, element_bytes=2, context=None)
    assert positions == DEFAULT_CONTEXT_CAP
    assert cache == 24 * 2 * 64 * 8192 * 2 * 2  # layers x kv heads x head dim x positions x (k, v) x bf16
    assert kv_cache_bytes(QWEN_05B, 2, context=1000) == (24 * 2 * 64 * 1000 * 2 * 2, 1000)


def test_kv_cache_of_gpt2_and_t5_shapes():
    gpt2 = {"n_layer": 10, "n_head": 12, "n_embd": 768, "n_positions": 300}
    assert kv_cache_bytes(gpt2, 4, None) == (10 * 12 * 64 * 300 * 2 * 4, 300)
    t5 = {"num_layers": 24, "num_decoder_layers": 24, "num_heads": 16, "d_kv": 64, "d_model": 1024}
    assert kv_cache_bytes(t5, 4, None) == (24 * 16 * 64 * ENCODER_DECODER_CONTEXT * 2 * 4, ENCODER_DECODER_CONTEXT)


def test_rwkv_strategies_are_laid_out_as_the_rwkv_package_does():
    slots = rwkv_stages("cuda fp16i8 *10 -> cuda fp16", 24)
    assert len(slots) == 25  # 24 layers and the head
    assert slots[:10] == [("cuda", "float16", True)] * 10 and slots[10:] == [("cuda", "float16", False)] * 15
    assert rwkv_stages("cpu fp32", 4) == [("cpu", "float32", False)] * 5
    assert rwkv_stages("cuda fp16 -> cpu fp32", 4) == [("cuda", "float16", False)] * 2 + [("cpu", "float32", False)] * 3


def test_rwkv_need_counts_8_bit_layers_and_keeps_the_embedding_in_ram(standin_dir):
    path = standin_dir("rwkv4")
    fp16 = estimate_need(path, RWKV4, LoadOptions(device="cuda", extra={"strategy": "cuda fp16"}))
    int8 = estimate_need(path, RWKV4, LoadOptions(device="cuda", extra={"strategy": "cuda fp16i8"}))
    cpu = estimate_need(path, RWKV4, LoadOptions(device="cpu"))
    assert fp16.overhead_bytes == CUDA_OVERHEAD_BYTES and cpu.overhead_bytes == CPU_OVERHEAD_BYTES
    assert fp16.ram_bytes > 0 and cpu.ram_bytes == 0  # the embedding: RAM beside a GPU, all in RAM on the CPU
    assert int8.weights_bytes < fp16.weights_bytes < cpu.weights_bytes
    assert fp16.cache_bytes == cpu.cache_bytes > 0  # the state, the same whatever the strategy


def need(total_gb: float, device: str = "cuda:0", placement: str = "float32") -> MemoryNeed:
    return MemoryNeed(device, placement, int(total_gb * 1e9), 0, 0, 100)


@pytest.mark.parametrize(
    ("free_gb", "verdict"), [(10.0, "fits"), (4.2, "tight"), (3.9, "does not fit"), (None, "unknown")]
)
def test_verdicts(free_gb, verdict):
    free = {"cuda:0": None if free_gb is None else int(free_gb * 1e9)}
    assert judge_fit(need(4.0), free).verdict == verdict


def test_a_smaller_dtype_the_cpu_or_unloading_the_other_pane_is_suggested():
    def alternative(options):
        dtype = options.dtype
        return need({"bfloat16": 2.0, "float16": 2.0}.get(dtype or "", 4.0), options.device, dtype or "float32")

    tries = fallbacks(family_spec("chat-template"), need(4.0))
    free = {"cuda:0": int(3e9), "cpu": int(64e9)}
    verdict = judge_fit(need(4.0), free, alternative=alternative, tries=tries)
    assert verdict.verdict == "does not fit" and verdict.suggestion == "--dtype bfloat16 would fit (about 1.9 GiB)"
    assert "does not fit: needs about 3.7 GiB on cuda:0" in verdict.line()

    verdict = judge_fit(need(4.0), {"cuda:0": int(1e9), "cpu": int(64e9)}, alternative=alternative, tries=tries)
    assert verdict.suggestion == "--device cpu would fit (about 3.7 GiB)"

    verdict = judge_fit(need(4.0), {"cuda:0": int(3e9)}, others_bytes=int(2e9))
    assert verdict.suggestion == "unloading the other pane would free 1.9 GiB, enough for it"


def test_an_rwkv_strategy_that_fits_is_suggested(standin_dir):
    path = standin_dir("rwkv4")

    def alternative(options):
        return estimate_need(path, RWKV4, options)

    fp16 = alternative(LoadOptions(device="cuda", extra={"strategy": "cuda fp16"}))
    all_int8 = alternative(LoadOptions(device="cuda", extra={"strategy": "cuda fp16i8"}))
    free = {"cuda": (fp16.total_bytes + all_int8.total_bytes) // 2, "cpu": int(64e9)}  # between the two
    verdict = judge_fit(fp16, free, alternative=alternative, tries=fallbacks(RWKV4, fp16))
    assert verdict.verdict == "does not fit"
    assert verdict.suggestion is not None and verdict.suggestion.startswith("--strategy 'cuda fp16i8 *")
