"""Where models come from, in the order they are asked: the hubs zhbench pulls from and finds cached models of
(``HUBS``), and the stores of other apps on this machine that it reads models from in place (``LOCAL_STORES``:
LM Studio's folders and Ollama's store; nothing is ever downloaded into them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zhbench.engines.hub.hubs import Hub, ModelHub
from zhbench.engines.hub.huggingface import HUGGING_FACE
from zhbench.engines.hub.lmstudio import lmstudio_models
from zhbench.engines.hub.modelscope import MODELSCOPE
from zhbench.engines.hub.ollama import ollama_models

HUBS: dict[Hub, ModelHub] = {"hf": HUGGING_FACE, "modelscope": MODELSCOPE}


@dataclass(frozen=True)
class StoredModel:
    """A model as a store on this machine lists it."""

    id: str
    path: Path  # its folder or file (a folder holding several models is one per file: discovery expands it)
    #: what makes it one row where its path does not: Ollama's manifest (several tags share one blob)
    row: Path | None = None
    #: why it cannot be used, for a model the store lists all the same (a missing blob)
    problem: str | None = None


#: a store: what it holds now (read at each call)
LocalStore = Callable[[], Iterable[StoredModel]]


def stored(pairs: Iterable[tuple[str, Path]]) -> Iterator[StoredModel]:
    """``(id, path)`` pairs, as a hub's cache or a folder lists its models."""
    return (StoredModel(model_id, path) for model_id, path in pairs)


def lmstudio_store() -> Iterator[StoredModel]:
    """Each chat-model GGUF file of LM Studio's folders."""
    return stored(lmstudio_models())


def ollama_store() -> Iterator[StoredModel]:
    """Each tag of Ollama's store, by its manifest; one that cannot be used is listed with its reason."""
    for model in ollama_models():
        path = model.blob if model.problem is None else model.manifest
        yield StoredModel(model.name, path, row=model.manifest, problem=model.problem)


#: the other apps' stores, read after the hubs' caches and the folders of the config
LOCAL_STORES: tuple[LocalStore, ...] = (lmstudio_store, ollama_store)
