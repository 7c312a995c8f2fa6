"""The editor's values as the session reads them: problems by field, presets, and the settings shown."""

from __future__ import annotations

from zhbench.engines.families.chat_template.rules import ChatTemplateParams
from zhbench.engines.families.clue_t5.promptclue import promptclue_defaults, promptclue_sampling
from zhbench.engines.families.rwkv4.chat_rules import rwkv4_defaults
from zhbench.engines.types import GenerationParams
from zhbench.workbench.session.panes import editable_values, params_summary, preset_values, value_problems


def test_every_bad_value_has_its_own_message_in_the_editor_s_order() -> None:
    params = GenerationParams()
    values = editable_values(params) | {"temperature": "hot", "max_new_tokens": "99999999999", "seed": "-3"}
    assert value_problems(params, values) == {
        "temperature": "temperature needs a number, got 'hot'",
        "max_new_tokens": "max_new_tokens must be a whole number from 1 to 1048576",
        "seed": "seed must be a whole number from 0 to 4294967295 (none: drawn for each reply)",
    }
    assert value_problems(params, editable_values(params) | {"seed": ""}) == {}  # empty: drawn for each reply


def test_a_preset_sets_decoding_settings_but_not_the_prompt_or_the_seed() -> None:
    presets = preset_values({"beam": promptclue_defaults(), "sample": promptclue_sampling()})
    assert presets["sample"]["top_p"] == "0.8" and presets["beam"]["greedy"] == "True"
    assert not {"task", "seed"} & (set(presets["beam"]) | set(presets["sample"]))
    thinking = preset_values({"model-defaults": ChatTemplateParams()})["model-defaults"]
    assert not {"system_prompt", "enable_thinking"} & set(thinking) and "temperature" in thinking


def test_rwkv_s_editor_and_header_leave_out_what_it_does_not_use() -> None:
    params = rwkv4_defaults()
    ignored = {"repetition_penalty", "num_beams", "length_penalty", "no_repeat_ngram_size"}
    assert not ignored & set(editable_values(params))
    assert {"presence_penalty", "frequency_penalty", "init_prompt", "free_gen_len"} <= set(editable_values(params))
    assert "rep " not in params_summary(params) and "rep 1" in params_summary(GenerationParams())


def test_a_server_models_header_shows_only_what_its_api_sends() -> None:
    from zhbench.engines.remote.openai_compat import RemoteParams

    header = params_summary(RemoteParams(temperature=0.6, top_p=0.9, seed=5))
    assert header.startswith("temp 0.6 · top_p 0.9 · seed 5")
    assert "top_k" not in header and "rep " not in header
    # nothing set: the server's own defaults apply, and the header says so; greedy is still greedy
    assert params_summary(RemoteParams()).startswith("server defaults · seed random")
    assert params_summary(RemoteParams(greedy=True, max_new_tokens=64)).startswith("greedy · max 64")
    # picking the server-defaults preset empties what an earlier choice set, so it is left to the server again
    chosen = preset_values({"server-defaults": RemoteParams()})["server-defaults"]
    assert chosen["temperature"] == chosen["top_p"] == chosen["max_new_tokens"] == "" and "seed" not in chosen
    assert "top_k 0" in params_summary(GenerationParams())
