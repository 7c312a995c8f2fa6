"""The models zhbench offers by name, and where their ids point: the 2023 seed models it was built to run
faithfully, and current Chinese chat models that the ``chat-template`` family runs.

Every fact here is from the model's own card or hub page; a fact that could not be confirmed is ``None``
(read the card), never a guess.
"""

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
    parameters: int  # approximate: the card's figure, else the hub page's count of the weights
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



# Current models (issue 13): native transformers architectures with a chat template, so no remote code runs.
# Parameter counts: the Qwen cards state them ("Number of Parameters"); for the others, the hub page's count
# of the published safetensors weights. Licences as the cards' metadata say; MiniCPM3's weights have a
# licence of their own beside the code's Apache-2.0, so it is left to the card.
CURRENT_MODELS: tuple[CatalogEntry, ...] = tuple(
    CatalogEntry(hf_id, hf_id.split("/")[1], "chat-template", hf_id, modelscope_id, parameters, licence)
    for hf_id, modelscope_id, parameters, licence in (
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", 490_000_000, "apache-2.0"),
        ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", 1_540_000_000, "apache-2.0"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", 7_610_000_000, "apache-2.0"),
        ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B", 600_000_000, "apache-2.0"),
        ("Qwen/Qwen3-1.7B", "Qwen/Qwen3-1.7B", 1_700_000_000, "apache-2.0"),
        ("Qwen/Qwen3-4B", "Qwen/Qwen3-4B", 4_000_000_000, "apache-2.0"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B", 8_200_000_000, "apache-2.0"),
        (
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            1_780_000_000,
            "mit",
        ),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 7_620_000_000, "mit"),
        ("THUDM/GLM-4-9B-0414", "ZhipuAI/GLM-4-9B-0414", 9_400_000_000, "mit"),
        ("openbmb/MiniCPM3-4B", "OpenBMB/MiniCPM3-4B", 4_070_000_000, None),
        ("01-ai/Yi-1.5-6B-Chat", "01ai/Yi-1.5-6B-Chat", 6_060_000_000, "apache-2.0"),
    )
)

#: every model offered by name: the seed models, then the current ones
CATALOG: tuple[CatalogEntry, ...] = SEED_MODELS + CURRENT_MODELS
