"""From what a person types (a folder, a ``.pth`` file, a hub id) to a loaded engine of the right family."""

from __future__ import annotations

import os
from pathlib import Path

from engines.base import Engine
from engines.checkpoints import read_json
from engines.errors import ModelLoadError, ModelNotFoundError, UnknownFamilyError, ZhbenchError
from engines.families import FAMILIES
from engines.standins import standin_family


def family_class(name: str) -> type[Engine]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})") from None


def resolve_model(spec: str) -> Path:
    """A local path as given, or the local snapshot of a hub id in the Hugging Face or ModelScope cache.

    Nothing is downloaded: a hub id must already be in a cache.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        for finder in (huggingface_snapshot, modelscope_snapshot):
            found = finder(spec)
            if found is not None:
                return found
        raise ModelNotFoundError(
            f"{spec}: not a local path, and not in the local Hugging Face or ModelScope cache (nothing is downloaded)"
        )
    raise ModelNotFoundError(f"{spec}: no such file or folder")


def huggingface_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at each call (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    return home / "hub"


def huggingface_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=huggingface_cache_dir()))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def modelscope_cache_root() -> Path:
    return Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub")).expanduser()


def modelscope_snapshot(model_id: str) -> Path | None:
    """The ModelScope cache folder of ``model_id`` (``MODELSCOPE_CACHE`` or ``~/.cache/modelscope/hub``), or None.

    ModelScope stores a model under ``models/OWNER/NAME`` (dots in the name written ``___``), older
    versions directly under ``OWNER/NAME``.
    """
    owner, name = model_id.split("/")
    root = modelscope_cache_root()
    for candidate in (root / "models" / owner / name.replace(".", "___"), root / owner / name):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None


def detect_family(path: Path, spec: str | None = None) -> str:
    """The family of the model at ``path``: a stand-in's own label, else its file layout, with the
    model's name or hub id breaking ties between families that share one layout."""
    declared = standin_family(path if path.is_dir() else path.parent)
    if declared in FAMILIES:
        return declared
    candidates = [name for name, engine in FAMILIES.items() if engine.matches_layout(path)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        if path.is_dir() and not (path / "config.json").is_file():
            checkpoints = sorted(p.name for p in path.glob("*.pth"))
            if checkpoints:  # an RWKV repository holds many: the person has to pick one
                listed = ", ".join(checkpoints[:3]) + (", …" if len(checkpoints) > 3 else "")
                reason = f"holds {len(checkpoints)} .pth checkpoints ({listed}); pass the one to load"
                raise ModelLoadError(path, reason)
            raise ModelLoadError(path, "missing config.json (not a model folder zhbench knows)")
        if path.is_dir():
            read_json(path / "config.json")  # a broken config is named as such, not as an unknown family
        raise UnknownFamilyError(
            f"{path}: no known model family has this file layout (pass --family; known: {', '.join(FAMILIES)})"
        )
    # The name a person gave, then the folder's own name (an HF snapshot is models--ORG--NAME/snapshots/HASH).
    for names in (spec or "", " ".join(path.parts[-4:])):
        named = [name for name in candidates if any(hint in names.lower() for hint in FAMILIES[name].name_hints)]
        if len(named) == 1:
            return named[0]
    raise UnknownFamilyError(
        f"{path}: could be {' or '.join(candidates)} (they share one file layout); pass --family to choose"
    )


def load_engine(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    strategy: str | None = None,
) -> Engine:
    """Load the model ``spec`` names; ``family`` overrides detection.

    ``strategy`` (where and in what precision each layer runs, e.g. ``cuda fp16i8 *10 -> cuda fp16``) is
    for the families whose ``takes_strategy`` is set; the others refuse it.
    """
    path = resolve_model(spec)
    hub_id = None if Path(spec).expanduser().exists() else spec
    engine_class = family_class(family) if family else family_class(detect_family(path, hub_id))
    if strategy is None:
        return engine_class.load(path, device=device, dtype=dtype)
    if not engine_class.takes_strategy:
        takers = ", ".join(name for name, engine in FAMILIES.items() if engine.takes_strategy)
        raise ZhbenchError(f"{engine_class.family} takes no strategy (only {takers} do); use --device and --dtype")
    return engine_class.load(path, device=device, dtype=dtype, strategy=strategy)  # type: ignore[call-arg]
