"""The seed models zhbench is built to run faithfully, and where their ids point."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogEntry:
    id: str  # the Hugging Face id (for RWKV: the repo holding the .pth file)
    name: str
    family: str
    hf_id: str
    modelscope_id: str | None  # None where no ModelScope copy is known
    parameters: int  # approximate
    licence: str | None  # None where it could not be confirmed here: read the model card

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SEED_MODELS: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "BlinkDL/rwkv-4-pile-7b",
        "RWKV-4-Pile-7B-Instruct-test2 (ChatRWKV)",
        "rwkv4",
        "BlinkDL/rwkv-4-pile-7b",
        None,
        7_000_000_000,
        "apache-2.0",
    ),
    CatalogEntry(
        "thu-coai/EVA2.0-xlarge", "EVA2.0-xlarge", "eva2", "thu-coai/EVA2.0-xlarge", None, 2_800_000_000, "mit"
    ),
    CatalogEntry(
        "shibing624/gpt2-dialogbot-base-chinese",
        "gpt2-dialogbot-base-chinese",
        "gpt2-dialogbot",
        "shibing624/gpt2-dialogbot-base-chinese",
        None,
        81_000_000,
        "apache-2.0",
    ),
    CatalogEntry(
        "liam168/chat-DialoGPT-small-zh",
        "chat-DialoGPT-small-zh",
        "dialogpt-zh",
        "liam168/chat-DialoGPT-small-zh",
        None,
        124_000_000,
        None,
    ),
    CatalogEntry(
        "ClueAI/PromptCLUE-base-v1-5",
        "PromptCLUE-base-v1-5",
        "promptclue",
        "ClueAI/PromptCLUE-base-v1-5",
        "ClueAI/PromptCLUE-base-v1-5",
        248_000_000,
        None,
    ),
    CatalogEntry(
        "ClueAI/ChatYuan-large-v1",
        "ChatYuan-large-v1",
        "chatyuan",
        "ClueAI/ChatYuan-large-v1",
        "ClueAI/ChatYuan-large",
        783_000_000,
        None,
    ),
)

