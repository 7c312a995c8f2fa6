"""Ollama's model store: the models ``ollama pull`` fetched, read in place (never copied or changed).

The store (``$OLLAMA_MODELS``, else ``~/.ollama/models``) holds ``manifests/REGISTRY/NAMESPACE/NAME/TAG``, one
JSON manifest per model, and ``blobs/sha256-HEX``, the layers by digest. A manifest's layer of media type
``application/vnd.ollama.image.model`` is the model's GGUF file; its ``application/vnd.ollama.image.template``
layer, where there is one, is the Modelfile's chat template (a Go template: no Jinja renderer runs it, but it
says which template the model was made for). A model is named as Ollama names it:
``qwen2.5:7b`` in the default registry's ``library`` namespace, ``NAMESPACE/NAME:TAG`` for another
namespace, ``REGISTRY/NAMESPACE/NAME:TAG`` for another registry (``hf.co/bartowski/...-GGUF:Q4_K_M``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_LAYER = "application/vnd.ollama.image.model"
TEMPLATE_LAYER = "application/vnd.ollama.image.template"
#: a manifest is a few hundred bytes, a template a few thousand; anything far larger is not one
MAX_MANIFEST_BYTES = MAX_TEMPLATE_BYTES = 1 << 20
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")
#: one part of a name (registry, namespace, model or tag) as Ollama allows it
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class OllamaModel:
    """A model in the store: its name, its weights' blob, its template's blob (None where the manifest names
    none that is there), and why it cannot be used where it cannot."""

    name: str
    manifest: Path
    blob: Path
    problem: str | None = None
    template: Path | None = None

    def template_text(self) -> str | None:
        """The Modelfile's chat template (Go template text), or None where there is none to read."""
        if self.template is None:
            return None
        try:
            with self.template.open("rb") as stream:
                data = stream.read(MAX_TEMPLATE_BYTES + 1)
        except OSError:
            return None
        return data.decode("utf-8", errors="replace") if len(data) <= MAX_TEMPLATE_BYTES else None


def store_dir() -> Path:
    """Ollama's store, read from the environment at each call (``OLLAMA_MODELS``, else ``~/.ollama/models``)."""
    configured = os.environ.get("OLLAMA_MODELS")
    return Path(configured).expanduser() if configured else Path.home() / ".ollama" / "models"


def display_name(registry: str, namespace: str, model: str, tag: str) -> str:
    """The name Ollama shows for a manifest's path parts."""
    if registry != DEFAULT_REGISTRY:
        return f"{registry}/{namespace}/{model}:{tag}"
    return f"{model}:{tag}" if namespace == DEFAULT_NAMESPACE else f"{namespace}/{model}:{tag}"


def manifest_path(name: str, store: Path | None = None) -> Path | None:
    """Where the manifest of the model named ``name`` (``qwen2.5:7b``, ``qwen2.5`` for ``:latest``,
    ``user/model:tag``, ``host/user/model:tag``) is; None when ``name`` is no Ollama name."""
    base, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", DEFAULT_TAG)
    parts = base.split("/")
    if len(parts) == 1:
        parts = [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_REGISTRY, *parts]
    if len(parts) != 3 or not all(_PART.fullmatch(part) for part in (*parts, tag)):
        return None
    return (store or store_dir()) / "manifests" / Path(*parts) / tag


def read_model(manifest: Path, name: str, store: Path) -> OllamaModel:
    """The model a manifest describes; its ``problem`` says why it cannot be used (an unreadable manifest,
    no model layer, a blob that is not there)."""
    blobs = store / "blobs"
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return OllamaModel(name, manifest, blobs, "its manifest is too large to be one")
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return OllamaModel(name, manifest, blobs, f"unreadable manifest ({type(exc).__name__})")
    layers = data.get("layers") if isinstance(data, dict) else None
    model_layers = _layers(layers, MODEL_LAYER)
    if not model_layers:
        return OllamaModel(name, manifest, blobs, "its manifest names no model layer")
    digest = next(_digests(model_layers[:1]), None)
    if digest is None:
        return OllamaModel(name, manifest, blobs, "its manifest's model layer has no sha256 digest")
    blob = blobs / f"sha256-{digest[1]}"
    if not blob.is_file():
        return OllamaModel(name, manifest, blob, f"its weights blob {blob.name} is missing from {blobs}")
    templates = [blobs / f"sha256-{found[1]}" for found in _digests(_layers(layers, TEMPLATE_LAYER))]
    return OllamaModel(name, manifest, blob, template=next((t for t in templates if t.is_file()), None))


def _layers(layers: object, media_type: str) -> list[dict[str, object]]:
    """The layers of a manifest's ``layers`` list that are of ``media_type``."""
    found = layers if isinstance(layers, list) else []
    return [layer for layer in found if isinstance(layer, dict) and layer.get("mediaType") == media_type]


def _digests(layers: list[dict[str, object]]) -> Iterator[re.Match[str]]:
    """The sha256 digest of each layer that names one."""
    for layer in layers:
        digest = _DIGEST.fullmatch(str(layer.get("digest", "")))
        if digest is not None:
            yield digest


def ollama_models(store: Path | None = None) -> Iterator[OllamaModel]:
    """Every model in the store (none when there is no store), in name order."""
    store = store or store_dir()
    manifests = store / "manifests"
    if not manifests.is_dir():
        return
    found = []
    for manifest in manifests.glob("*/*/*/*"):
        registry, namespace, model, tag = manifest.relative_to(manifests).parts
        if manifest.is_file() and all(_PART.fullmatch(part) for part in (registry, namespace, model, tag)):
            found.append((display_name(registry, namespace, model, tag), manifest))
    for name, manifest in sorted(found):
        yield read_model(manifest, name, store)


def find_ollama_model(name: str) -> OllamaModel | None:
    """The store's model named ``name``, or None when ``name`` is no Ollama name or the store has no such model."""
    store = store_dir()
    manifest = manifest_path(name, store)
    if manifest is None or not manifest.is_file():
        return None
    return read_model(manifest, name, store)


def blob_digest(path: Path) -> str | None:
    """The sha256 a blob of the store is named by (``blobs/sha256-HEX``: its content's digest), or None."""
    digest = _DIGEST.fullmatch(path.name)
    return digest[1] if digest and path.parent.name == "blobs" else None


def blob_model(path: Path) -> OllamaModel | None:
    """The model whose weights blob is at ``path`` (the first in name order where several tags share it), or
    None when ``path`` is no model's blob in an Ollama store."""
    if blob_digest(path) is None:
        return None
    target = path.resolve()
    models = ollama_models(path.parent.parent)
    return next((model for model in models if model.problem is None and model.blob.resolve() == target), None)


def blob_name(path: Path) -> str | None:
    """The name Ollama gives the weights blob at ``path`` (see ``blob_model``), or None."""
    model = blob_model(path)
    return model.name if model is not None else None
