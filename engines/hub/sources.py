"""The hubs zhbench pulls from and finds cached models of, in the order they are asked."""

from __future__ import annotations

from zhbench.engines.hub.hubs import Hub, ModelHub
from zhbench.engines.hub.huggingface import HUGGING_FACE
from zhbench.engines.hub.modelscope import MODELSCOPE

HUBS: dict[Hub, ModelHub] = {"hf": HUGGING_FACE, "modelscope": MODELSCOPE}
