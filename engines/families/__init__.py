"""The model families zhbench runs, one module each (prompt builder, stop rule, defaults)."""

from __future__ import annotations

from engines.base import Engine
from engines.families.chatyuan import ChatYuanEngine
from engines.families.dialogpt_zh import DialogptZhEngine
from engines.families.eva2 import Eva2Engine
from engines.families.gpt2_dialogbot import Gpt2DialogbotEngine
from engines.families.promptclue import PromptClueEngine
from engines.families.rwkv4 import Rwkv4Engine

FAMILIES: dict[str, type[Engine]] = {
    engine.family: engine
    for engine in (
        Gpt2DialogbotEngine,
        DialogptZhEngine,
        ChatYuanEngine,
        PromptClueEngine,
        Rwkv4Engine,
        Eva2Engine,
    )
}
