"""The model families zhbench knows, and loading a model with the right one.

Every family, zhbench's own included, is a ``FamilySpec`` registered under the ``zhbench.families``
entry-point group (the built-ins are declared in zhbench's ``pyproject.toml``), so a family from another
package is listed, detected and loaded exactly as the built-ins are. ``zhbench models``, the app's model
list and detection all read this one registry.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from zhbench.engines.api import ChatEngine, FamilySpec, LoadOptions
from zhbench.engines.errors import ModelLoadError, UnknownFamilyError, ZhbenchError

#: the entry-point group families register under: ``NAME = "module:FAMILY"``, FAMILY a ``FamilySpec``
ENTRY_POINT_GROUP = "zhbench.families"
#: the file a stand-in carries so that zhbench can tell its family and label it random weights
STANDIN_MARKER = "zhbench-standin.json"

@functools.cache
def _registered() -> tuple[dict[str, FamilySpec], tuple[str, ...]]:
    """Every family registered in this Python environment, and a line for each entry point that failed."""
    found: dict[str, FamilySpec] = {}
    problems: list[str] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = point.load()
        except Exception as exc:  # a broken plugin must not take zhbench down with it
            problems.append(f"family {point.name!r} ({point.value}) cannot be imported: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(spec, FamilySpec):
            problems.append(f"family {point.name!r} ({point.value}) is not a zhbench FamilySpec")
        elif spec.name != point.name:
            problems.append(f"family {point.name!r} ({point.value}) calls itself {spec.name!r}")
        elif spec.name in found:
            problems.append(f"family {spec.name!r} is registered twice; {point.value} is ignored")
        else:
            found[spec.name] = spec
    if not found:
        problems.append(
            f"no model families are registered (entry points {ENTRY_POINT_GROUP!r}): "
            "is zhbench installed? `pip install -e .` in its checkout"
        )
    return found, tuple(problems)


def families() -> Mapping[str, FamilySpec]:
    """The registered families by name, sorted."""
    found, _ = _registered()
    return {name: found[name] for name in sorted(found)}


def family_problems() -> tuple[str, ...]:
    """A line for each registered family that could not be used."""
    return _registered()[1]


def family_spec(name: str) -> FamilySpec:
    """The registered family ``name``; an ``UnknownFamilyError`` listing the known ones."""
    try:
        return families()[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown family {name!r} (known: {', '.join(families())})") from None


def standin_label(folder: Path) -> str | None:
    """The family a stand-in folder declares in its marker file, or None for a real checkpoint."""
    try:
        data = json.loads((folder / STANDIN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("family") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def detect_family(path: Path, spec: str | None = None) -> str:
    """The family of the model at ``path``: a stand-in's own label, else its file layout, with the
    model's name or hub id breaking ties between families that share one layout."""
    known = families()
    declared = standin_label(path if path.is_dir() else path.parent)
    if declared is not None and declared in known:
        return declared
    candidates = [name for name, family_spec in known.items() if _matches(family_spec, path)]
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
            from zhbench.engines.local.checkpoints import read_json

            read_json(path / "config.json")  # a broken config is named as such, not as an unknown family
        raise UnknownFamilyError(
            f"{path}: no known model family has this file layout (pass --family; known: {', '.join(known)})"
        )
    # The name a person gave, then the folder's own name (an HF snapshot is models--ORG--NAME/snapshots/HASH).
    for names in (spec or "", " ".join(path.parts[-4:])):
        named = [name for name in candidates if any(hint in names.lower() for hint in known[name].name_hints)]
        if len(named) == 1:
            return named[0]
    raise UnknownFamilyError(
        f"{path}: could be {' or '.join(candidates)} (they share one file layout); pass --family to choose"
    )


def _matches(spec: FamilySpec, path: Path) -> bool:
    try:
        return spec.matches_layout(path)
    except ZhbenchError:
        raise  # a family's own clear error about the files (a broken config.json)
    except Exception:  # a third-party layout test that breaks on an odd folder is not a match
        return False


def resolve(spec: str, family: str | None = None) -> tuple[Path, str]:
    """The files a model spec names (a folder, a file, or a hub id in a local cache) and their family:
    ``family`` when given (checked), else detected, the spec's own name breaking ties."""
    from zhbench.engines.hub.resolve import resolve_model

    path = resolve_model(spec)
    if family is not None:
        return path, family_spec(family).name
    return path, detect_family(path, None if Path(spec).expanduser().exists() else spec)


def load_engine(
    spec: str,
    *,
    family: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> ChatEngine:
    """Load the model ``spec`` names (a folder, a file, or a hub id in a local cache); ``family`` overrides
    detection. ``extra`` holds a family's own load options (rwkv4's ``strategy``); others refuse them."""
    path, name = resolve(spec, family)
    chosen = family_spec(name)
    extra = dict(extra or {})
    for name in extra:
        if name not in chosen.load_options:
            takers = ", ".join(n for n, s in families().items() if name in s.load_options) or "none"
            raise ZhbenchError(f"{chosen.name} takes no {name} (families that do: {takers})")
    return chosen.load(path, LoadOptions(device=device, dtype=dtype, extra=extra))


def write_standin(
    family_name: str, folder: Path, weights_format: str | None = None, options: Mapping[str, str] | None = None
) -> Path:
    """Write a tiny random-weight stand-in of a family into ``folder`` (in its published weight format
    by default, with the family's own ``options``); return the path to load."""
    spec = family_spec(family_name)
    if spec.standin is None:
        raise ZhbenchError(f"family {family_name!r} has no stand-in builder")
    weights_format = weights_format or spec.standin_formats[0]
    if weights_format not in spec.standin_formats:
        known = ", ".join(spec.standin_formats)
        raise ZhbenchError(f"{family_name} stand-ins come as {known}, not {weights_format}")
    options = dict(options or {})
    for name in options:
        if name not in spec.standin_options:
            takers = ", ".join(spec.standin_options) or "none"
            raise ZhbenchError(f"{family_name} stand-ins take no {name} (they take: {takers})")
    module_name, _, function_name = spec.standin.partition(":")
    writer = getattr(importlib.import_module(module_name), function_name)
    return Path(writer(folder, weights_format, **options))
