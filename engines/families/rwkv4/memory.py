"""What an RWKV-4 load takes, by strategy: each layer's device and precision as the rwkv package lays them
out, counted from the checkpoint's pickle without loading it (the family's ``estimate_memory``), and the
strategies to suggest when one does not fit (its ``fallbacks``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from zhbench.engines.api import LoadOptions, MemoryNeed
from zhbench.engines.families.rwkv4.strategy import default_strategy
from zhbench.engines.local.footprint import DTYPE_BYTES, TensorInfo, overhead_bytes, weight_tensors

#: RWKV-4 has at most 40 layers: more 8-bit layers than that cannot shrink a load further
MAX_LAYERS = 40


def rwkv_stages(strategy: str, n_layer: int) -> list[tuple[str, str, bool]]:
    """``(device, dtype, 8-bit weights)`` of each of the ``n_layer + 1`` slots (the last: ``ln_out`` and
    ``head``), as rwkv 0.8's ``RWKV.__init__`` assigns them (``*N`` fixed counts, the rest shared out,
    ``*N+`` streamed layers counted on the stage's device)."""
    stages = [stage.split() for stage in strategy.split("->")]
    if any(len(stage) < 2 or stage[1].removesuffix("i8") not in ("fp32", "fp16", "bf16") for stage in stages):
        raise ValueError(f"not an RWKV strategy zhbench can estimate: {strategy!r}")
    slots = n_layer + 1
    plan = [0] * len(stages)
    allocated, free_slots, stream = 0, 0, -1
    for i, stage in enumerate(stages):
        if len(stage) > 2:
            plan[i] = int(stage[2].strip("*+"))
            stream = i if stage[2].endswith("+") else stream
            allocated += plan[i]
            if allocated >= slots:
                plan[i] += slots - allocated
                break
        else:
            free_slots += 1
    if stream < 0:
        for i in range(len(stages)):
            if plan[i] == 0 and free_slots and slots > allocated:
                plan[i] = (slots - allocated) // free_slots
                allocated += plan[i]
                free_slots -= 1
        plan[-1] += max(slots - allocated, 0)
    else:
        plan[stream] += max(slots - allocated, 0)
    kinds = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    return [
        (stage[0], kinds[stage[1].removesuffix("i8")], stage[1].endswith("i8"))
        for stage, count in zip(stages, plan, strict=True)
        for _ in range(count)
    ]


def strategy_need(tensors: Mapping[str, TensorInfo], strategy: str) -> MemoryNeed:
    n_layer = 1 + max(int(name.split(".")[1]) for name in tensors if name.startswith("blocks."))
    n_embd = next(t.numel for name, t in tensors.items() if name == "ln_out.weight")
    slots = rwkv_stages(strategy, n_layer)
    by_device: dict[str, int] = {}
    matrices = ("key.weight", "value.weight", "receptance.weight", "output.weight", "head.weight")
    for name, tensor in tensors.items():
        if name.startswith("emb."):  # rwkv keeps the embedding in RAM whatever the strategy (model.py)
            device, dtype, eight_bit = "cpu", slots[0][1], False
        else:
            slot = n_layer if name.startswith(("ln_out.", "head.")) else int(name.split(".")[1])
            device, dtype, eight_bit = slots[slot] if name.startswith(("blocks.", "ln_out.", "head.")) else slots[0]
        if eight_bit and name.endswith(matrices):
            # uint8 weights plus four vectors of per-row and per-column scales in the stage's dtype
            size = tensor.numel + 2 * int(tensor.numel**0.5) * 2 * DTYPE_BYTES[dtype]
        elif ".time_decay" in name:
            size = tensor.numel * 4  # kept in fp32 (model.py)
        else:
            size = tensor.numel * DTYPE_BYTES[dtype]
        by_device[device] = by_device.get(device, 0) + size
    device = slots[0][0]
    state = 5 * n_layer * n_embd * 4 * 2  # five fp32 vectors a layer; a saved copy for the next turn
    return MemoryNeed(
        device=device,
        placement=f"strategy '{strategy}'",
        weights_bytes=by_device.pop(device, 0),
        cache_bytes=state,
        overhead_bytes=overhead_bytes(device),
        context=0,
        ram_bytes=sum(by_device.values()),
    )


def estimate_memory(path: Path, options: LoadOptions, context: int | None) -> MemoryNeed:
    """The load's need at its ``strategy``, else ``device`` in fp16 (GPU) or fp32 (CPU) as ChatRWKV defaults; the
    state does not grow with the context."""
    strategy = options.extra.get("strategy") or default_strategy(options.device, options.dtype)
    return strategy_need(weight_tensors(path), strategy)


def fallbacks(need: MemoryNeed) -> Sequence[LoadOptions]:
    """On a GPU, the fewest 8-bit layers that fit (more only shrink it), then the CPU."""
    device = need.device
    eight_bit = [
        LoadOptions(device=device, extra={"strategy": f"{device} fp16i8 *{k} -> {device} fp16"})
        for k in range(1, MAX_LAYERS + 2)
    ]
    return [*(eight_bit if device.startswith("cuda") else []), LoadOptions(device="cpu")]
