"""zhbench's engine core: loading Chinese chat models and streaming their replies. Imports no Textual.

Heavy libraries (torch, transformers) are imported only when a model is loaded or built.
"""

from engines.base import Engine, ReplyStream
from engines.errors import (
    GenerationError,
    HistoryError,
    ModelLoadError,
    ModelNotFoundError,
    UnknownFamilyError,
    UnsafeCheckpointError,
    ZhbenchError,
)
from engines.loading import detect_family, family_class, load_engine, resolve_model
from engines.types import GenerationParams, Message, Prompt, Reply, ReplyStats, StopReason, validate_history

__all__ = [
    "Engine",
    "GenerationError",
    "GenerationParams",
    "HistoryError",
    "Message",
    "ModelLoadError",
    "ModelNotFoundError",
    "Prompt",
    "Reply",
    "ReplyStats",
    "ReplyStream",
    "StopReason",
    "UnknownFamilyError",
    "UnsafeCheckpointError",
    "ZhbenchError",
    "detect_family",
    "family_class",
    "load_engine",
    "resolve_model",
    "validate_history",
]
