"""The chat-template family's rules as small pure functions: what a folder must hold, where a reply ends and
its default settings. The messages a template is given and a reply's reasoning part are every template
family's (``engines.local.chat_rules``).

Each follows what transformers 5 does for a model with a chat template: ``PreTrainedTokenizerBase.
apply_chat_template`` (``tokenization_utils_base.py``) renders and tokenizes the messages, and
``generate()`` (``generation/utils.py``, ``generation/configuration_utils.py``) reads the model's
``generation_config.json`` for its defaults and end ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zhbench.engines.local.chat_rules import (
    DEFAULT_MAX_NEW_TOKENS,
    ChatTemplateParams,
    chat_messages,
    prompt_opens_thinking,
    settled_reasoning,
    split_reasoning,
    template_variables,
)

#: the shared rules this family's modules and tests import from here
__all__ = [
    "ChatTemplateParams",
    "causal_architecture",
    "chat_messages",
    "end_ids",
    "model_defaults",
    "prompt_opens_thinking",
    "remote_code_entry",
    "settled_reasoning",
    "split_reasoning",
    "template_variables",
]

def remote_code_entry(config: Mapping[str, Any]) -> str | None:
    """The ``auto_map`` entry a ``config.json`` names for its causal LM (code that comes with the model)."""
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, Mapping):
        return None
    for key in ("AutoModelForCausalLM", "AutoModel"):
        entry = auto_map.get(key)
        if isinstance(entry, str):
            return entry
        if isinstance(entry, list) and entry and isinstance(entry[0], str):
            return entry[0]
    return None


def causal_architecture(config: Mapping[str, Any]) -> str | None:
    """The model class ``config.json`` names for causal generation (``Qwen2ForCausalLM``…), or None."""
    architectures = config.get("architectures")
    if not isinstance(architectures, list):
        return None
    return next((a for a in architectures if isinstance(a, str) and a.endswith("ForCausalLM")), None)


def end_ids(
    generation_config: Mapping[str, Any], config: Mapping[str, Any], tokenizer_eos: int | None
) -> frozenset[int]:
    """Every id that ends a reply: ``generation_config.json``'s ``eos_token_id`` (an int or a list),
    ``config.json``'s and the tokenizer's. Qwen's generation config lists two; reading one makes the
    model run on past the end of its turn."""
    found: set[int] = set()
    for value in (generation_config.get("eos_token_id"), config.get("eos_token_id"), tokenizer_eos):
        found.update(_ids(value))
    return frozenset(found)


def _ids(value: object) -> Iterable[int]:
    if isinstance(value, bool):
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, list):
        return (v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return ()


def model_defaults(generation_config: Mapping[str, Any]) -> ChatTemplateParams:
    """The model's own decoding settings (``generation_config.json``), transformers' defaults for the rest.

    ``do_sample`` false (transformers' default) is greedy; temperature 1, top_p 1, top_k 50 and no
    repetition penalty are ``GenerationConfig``'s defaults; the reply may take ``max_new_tokens`` where the
    file sets it, else ``DEFAULT_MAX_NEW_TOKENS``.
    """

    def number(key: str, default: float) -> float:
        value = generation_config.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    max_new = generation_config.get("max_new_tokens")
    return ChatTemplateParams(
        greedy=generation_config.get("do_sample") is not True,
        temperature=number("temperature", 1.0) or 1.0,
        top_p=number("top_p", 1.0),
        top_k=int(number("top_k", 50)),
        repetition_penalty=number("repetition_penalty", 1.0),
        max_new_tokens=max_new if isinstance(max_new, int) and max_new > 0 else DEFAULT_MAX_NEW_TOKENS,
    )
