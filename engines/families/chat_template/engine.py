"""Any local causal LM whose tokenizer ships a chat template (Qwen2.5/Qwen3, GLM-4, DeepSeek-R1 distills,
MiniCPM, Yi, Llama…), run as transformers' own ``apply_chat_template`` + ``generate()`` would run it.

The prompt is ``tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)`` with
the model's own template; the settings and end ids are the model's ``generation_config.json``; decoding is
``engines.local``'s KV-cached loop, which reuses the cache of the turn before for the longest prefix the
two prompts share. Only architectures transformers runs natively load: a model that needs code of its own
(``auto_map``, ``trust_remote_code``) is refused before anything of it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zhbench.engines.api import FamilySpec
from zhbench.engines.context import fit_messages, keep_tail_that_fits, prompt_budget
from zhbench.engines.errors import ModelLoadError
from zhbench.engines.families.chat_template.rules import (
    ChatTemplateParams,
    causal_architecture,
    chat_messages,
    end_ids,
    model_defaults,
    prompt_opens_thinking,
    remote_code_entry,
    settled_reasoning,
    split_reasoning,
    template_variables,
)
from zhbench.engines.local.chat_render import ChatTemplate
from zhbench.engines.local.checkpoints import read_json
from zhbench.engines.local.token_engine import Generation
from zhbench.engines.local.transformers import CausalLMEngine, TransformersGeneration, checked_tokenizer
from zhbench.engines.types import ContextFit, GenerationParams, Message, Prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TEMPLATE_FILE = "chat_template.jinja"


class ChatTemplateGeneration(TransformersGeneration):
    """A reply whose ``<think>`` part, if any, streams and is kept apart from the answer."""

    def __init__(self, engine: ChatTemplateEngine, prompt: Prompt, params: GenerationParams, cancel: Any) -> None:
        super().__init__(engine, prompt, params, cancel)
        self.opened = prompt_opens_thinking(prompt.text)

    def split(self, text: str) -> tuple[str, str]:
        return split_reasoning(text, opened=self.opened)

    def streamable(self, text: str) -> str:
        return settled_reasoning(super().streamable(text), opened=self.opened)


def has_chat_template(folder: Path) -> bool:
    """Whether a folder ships a chat template: ``chat_template.jinja``, or ``tokenizer_config.json``'s key."""
    if (folder / TEMPLATE_FILE).is_file():
        return True
    if not (folder / "tokenizer_config.json").is_file():
        return False
    return bool(read_json(folder / "tokenizer_config.json").get("chat_template"))


class ChatTemplateEngine(CausalLMEngine):
    family = "chat-template"
    cuda_dtype = "bfloat16"  # what current models are published and run in

    def __init__(
        self, model_path: Path, device: str, dtype: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> None:
        self.generation_config = _optional_json(model_path / "generation_config.json")
        super().__init__(model_path, device, dtype, model, tokenizer)
        template = tokenizer.chat_template
        self.template: str = template if isinstance(template, str) else ""
        self.chat_template()  # a template that does not compile is refused at load, naming it

    def chat_template(self) -> ChatTemplate:
        """The model's template, compiled (once per text), rendered within the process's limits."""
        shipped = (self.model_path / TEMPLATE_FILE).is_file()
        origin = TEMPLATE_FILE if shipped else "tokenizer_config.json's chat_template"
        return ChatTemplate(self.template, model=str(self.model_path), origin=origin)

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def matches_layout(cls, path: Path) -> bool:
        if not path.is_dir() or not (path / "config.json").is_file():
            return False
        config = read_json(path / "config.json")
        named = causal_architecture(config) is not None or remote_code_entry(config) is not None
        return named and has_chat_template(path)

    @classmethod
    def model_class(cls, folder: Path) -> Any:
        """The transformers class ``config.json`` names, if transformers runs it natively; a model that
        needs its own code is refused, naming it, before any of it is read."""
        import transformers

        config = read_json(folder / "config.json")
        architecture = causal_architecture(config)
        model_class = getattr(transformers, architecture, None) if architecture else None
        if model_class is not None:
            return model_class
        remote = remote_code_entry(config)
        if remote is not None:
            raise ModelLoadError(
                folder / "config.json",
                f"needs the model's own code ({remote} in auto_map); zhbench does not run code that comes "
                "with a model (trust_remote_code)",
            )
        raise ModelLoadError(
            folder / "config.json",
            f"architecture {architecture or '(none)'} is not one transformers {transformers.__version__} runs",
        )

    @classmethod
    def load_tokenizer(cls, folder: Path) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        cls.model_class(folder)  # refuse a model that needs its own code before its tokenizer is read
        tokenizer = checked_tokenizer(AutoTokenizer, folder)
        if not tokenizer.chat_template:
            raise ModelLoadError(folder, "the tokenizer has no chat template")
        return tokenizer

    def reply_end_ids(self) -> frozenset[int]:
        return end_ids(self.generation_config, self.model.config.to_dict(), self.tokenizer.eos_token_id)

    # --- settings -----------------------------------------------------------------------------

    def default_params(self) -> GenerationParams:
        return model_defaults(self.generation_config)

    def presets(self) -> dict[str, GenerationParams]:
        """The model's own settings (``generation_config.json``), and greedy decoding."""
        defaults = model_defaults(self.generation_config)
        return {"model-defaults": defaults, "greedy": defaults.with_overrides({"greedy": True})}

    # --- prompts ------------------------------------------------------------------------------

    def build_prompt(self, history: list[Message], params: GenerationParams) -> Prompt:
        """``apply_chat_template`` over the system prompt and the history. A conversation longer than the
        context drops its oldest exchanges (the system prompt and the newest question stay), then the start
        of an overlong newest message, as the other families do."""
        settings = _chat_params(params)
        budget = prompt_budget(self.max_positions, params.max_new_tokens)

        def ids_of(messages: Sequence[Message]) -> list[int]:
            ids: list[int] = self._render(messages, settings, tokenize=True)
            return ids

        kept = fit_messages(history, lambda messages: len(ids_of(messages)) <= budget)
        dropped, truncated = len(history) - len(kept), len(ids_of(kept)) > budget
        if truncated:
            older, last = kept[:-1], kept[-1]

            def fits(content: str) -> bool:
                return len(ids_of([*older, {"role": "user", "content": content}])) <= budget

            kept = [*older, {"role": "user", "content": keep_tail_that_fits(last["content"], fits)}]
        fit = ContextFit(self.max_positions, dropped, truncated)
        return Prompt(self._render(kept, settings, tokenize=False), ids_of(kept), fit=fit)

    def _render(self, history: Sequence[Message], settings: ChatTemplateParams, *, tokenize: bool) -> Any:
        """What ``apply_chat_template`` gives (its variables: the special tokens, then ours), rendered within
        the limits: a template that hangs, floods or fails is one ``ChatTemplateError`` line."""
        text = self.chat_template().render(
            chat_messages(history, settings.system_prompt),
            add_generation_prompt=True,
            **{**self.tokenizer.special_tokens_map, **template_variables(self.template, settings)},
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if tokenize else text

    def decode_reply(self, output_ids: Sequence[int]) -> str:
        return self.decode_text(output_ids, skip_special_tokens=True)

    def start_generation(self, prompt: Prompt, params: GenerationParams, cancel: Any) -> Generation:
        return ChatTemplateGeneration(self, prompt, params, cancel)


def _chat_params(params: GenerationParams) -> ChatTemplateParams:
    """The family's settings from any params: generic ones keep their values, its own take their defaults."""
    if isinstance(params, ChatTemplateParams):
        return params
    return ChatTemplateParams().with_overrides(params.to_dict())


def _optional_json(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}


FAMILY = FamilySpec(
    name=ChatTemplateEngine.family,
    summary="any local causal LM whose tokenizer ships a chat template (Qwen, GLM-4, DeepSeek distills, MiniCPM…)",
    matches_layout=ChatTemplateEngine.matches_layout,
    load=ChatTemplateEngine.from_options,
    name_hints=("qwen", "glm", "deepseek", "minicpm", "yi-", "llama", "mistral", "instruct"),
    standin="zhbench.engines.standins.chat_template:write_chat_template_standin",
    standin_formats=("safetensors", "bin"),
    standin_options={
        "template": "a .jinja chat template file (default: ChatML, as Qwen2.5 writes it)",
        "tokenizer": "a folder whose tokenizer files the stand-in takes (default: a small one trained here)",
    },
    dtypes={"cuda": ChatTemplateEngine.cuda_dtype},
)
