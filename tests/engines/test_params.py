"""Decoding settings checked in one place (the app's editor, the CLI and the server all ask ``problems``)."""

from __future__ import annotations

import pytest

from zhbench.engines.families.clue_t5.promptclue import TASK_TEMPLATES, PromptClueParams
from zhbench.engines.families.eva2.engine import Eva2Params
from zhbench.engines.families.rwkv4.chat_rules import INIT_PROMPTS, Rwkv4Params
from zhbench.engines.remote.openai_compat import RemoteParams
from zhbench.engines.types import MAX_NEW_TOKENS, MAX_SEED, GenerationParams


def test_each_setting_out_of_range_has_one_message_and_validate_names_them_all() -> None:
    bad = GenerationParams(
        temperature=float("inf"),
        top_p=0.0,
        top_k=-1,
        repetition_penalty=float("nan"),
        max_new_tokens=99999999999,
        seed=-3,
        num_beams=0,
        length_penalty=float("-inf"),
        no_repeat_ngram_size=-2,
    )
    problems = bad.problems()
    assert problems == {
        "temperature": "temperature must be above 0 and finite (use greedy for deterministic replies)",
        "top_p": "top_p must be above 0 and at most 1 (1: off)",
        "top_k": "top_k must be a whole number 0 or more (0: off)",
        "repetition_penalty": "repetition_penalty must be above 0 and finite (1: off)",
        "max_new_tokens": f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}",
        "seed": f"seed must be a whole number from 0 to {MAX_SEED} (none: drawn for each reply)",
        "num_beams": "num_beams must be a whole number 1 or more",
        "length_penalty": "length_penalty must be a finite number",
        "no_repeat_ngram_size": "no_repeat_ngram_size must be a whole number 0 or more (0: off)",
    }
    with pytest.raises(ValueError) as refused:
        bad.validate()
    assert str(refused.value) == "; ".join(problems.values())


@pytest.mark.parametrize(
    ("overrides", "fine"),
    [
        ({"seed": 0}, True),
        ({"seed": MAX_SEED}, True),  # numpy's RandomState (RWKV's sampler) takes up to 2**32 - 1
        ({"seed": MAX_SEED + 1}, False),
        ({"seed": None}, True),
        ({"max_new_tokens": MAX_NEW_TOKENS}, True),
        ({"max_new_tokens": MAX_NEW_TOKENS + 1}, False),
        ({"max_new_tokens": 0}, False),
    ],
)
def test_the_limits_of_the_seed_and_of_a_reply(overrides: dict[str, object], fine: bool) -> None:
    assert (GenerationParams().with_overrides(overrides).problems() == {}) is fine


def test_text_settings_with_known_values_list_them_and_refuse_others() -> None:
    assert PromptClueParams.choices() == {"task": tuple(TASK_TEMPLATES)}
    assert Rwkv4Params.choices() == {"init_prompt": tuple(INIT_PROMPTS)}
    assert GenerationParams.choices() == {}
    assert PromptClueParams(task="poetry").problems() == {
        "task": f"unknown task 'poetry' (known: {', '.join(TASK_TEMPLATES)})"
    }


@pytest.mark.parametrize("setting", ["repetition_penalty", "num_beams", "length_penalty", "no_repeat_ngram_size"])
def test_rwkv_refuses_the_settings_its_sampler_does_not_use(setting: str) -> None:
    assert Rwkv4Params().problems() == {}  # at their defaults they are fine
    with pytest.raises(
        ValueError, match=f"^{setting} cannot be set for this model: ChatRWKV's sampler does not use it$"
    ):
        Rwkv4Params().with_overrides({setting: 2}).validate()


def test_a_server_model_still_refuses_what_its_api_has_no_field_for() -> None:
    assert RemoteParams(top_k=5).problems() == {
        "top_k": "top_k cannot be set for this model: its API has no field for it"
    }


def test_a_family_adds_checks_of_its_own_settings() -> None:
    eva = Eva2Params(min_length=-1, temperature=0.0)
    assert list(eva.problems()) == ["temperature", "min_length"]
    rwkv = Rwkv4Params(free_gen_len=0, presence_penalty=float("nan"))
    assert list(rwkv.problems()) == ["presence_penalty", "free_gen_len"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seed": "x"}, "seed needs a whole number, got 'x'"),
        ({"greedy": "maybe"}, "greedy needs true or false, got 'maybe'"),
        ({"temperature": "hot"}, "temperature needs a number, got 'hot'"),
        ({"max_new_tokens": None}, "max_new_tokens cannot be empty"),
    ],
)
def test_a_value_of_the_wrong_kind_says_what_it_needs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        GenerationParams().with_overrides(overrides)
    assert str(refused.value) == message
