"""F2's parameter editor in the real app: lists where the values are known, switches, presets, only the
settings the family uses, and one message for each value out of range until its field is edited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select, Static, Switch

from zhbench.engines.families.clue_t5.promptclue import TASK_TEMPLATES, promptclue_sampling
from zhbench.engines.families.rwkv4.chat_rules import INIT_PROMPTS
from zhbench.engines.registry import write_standin
from zhbench.widgets.chat_pane import ChatPane
from zhbench.widgets.params_dialog import ParamsDialog
from zhbench.workbench.app import ZhbenchApp

SIZE = (150, 40)


async def open_editor(pilot: Pilot[None], app: ZhbenchApp) -> ParamsDialog:
    await pilot.press("f2")
    assert isinstance(app.screen, ParamsDialog)
    return app.screen


async def test_a_known_set_of_values_is_a_list_greedy_a_switch_and_a_preset_fills_the_decoding_settings(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("promptclue"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        dialog = await open_editor(pilot, app)
        task = dialog.query_one("#param-task", Select)
        assert [str(option.prompt) for option in task.query_one(OptionList).options] == list(TASK_TEMPLATES)
        greedy = dialog.query_one("#param-greedy", Switch)
        assert greedy.value is True  # PromptCLUE's default is beam search
        presets = dialog.query_one("#params-preset", Select)
        assert presets.selection == "beam"  # the settings are the first preset's

        task.value = "summarize"
        presets.value = "sample"
        await pilot.pause()
        assert dialog.query_one("#param-top_p", Input).value == "0.8"
        assert dialog.query_one("#param-max_new_tokens", Input).value == "63"
        assert greedy.value is False and task.value == "summarize"  # the task is the person's, not the preset's
        dialog.query_one("#param-top_k", Input).value = "40"
        await pilot.pause()
        assert presets.selection is None  # edited: no preset has these settings

        await pilot.click("#params-apply")
        assert app.screen is not dialog
        assert app.bench.pane("a").params == promptclue_sampling().with_overrides({"task": "summarize", "top_k": 40})


async def test_rwkv_shows_only_the_settings_it_uses_and_lists_its_init_prompts(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    app = make_app(preload={"a": str(write_standin("rwkv4", tmp_path / "rwkv"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        header = str(app.query_one("#pane-a", ChatPane).query_one(".pane-header").content)
        assert " rep " not in header  # RWKV has presence and frequency penalties instead
        dialog = await open_editor(pilot, app)
        for ignored in ("repetition_penalty", "num_beams", "length_penalty", "no_repeat_ngram_size"):
            assert not dialog.query(f"#param-{ignored}")
        for used in ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty"):
            assert dialog.query(f"#param-{used}")
        init_prompt = dialog.query_one("#param-init_prompt", Select)
        assert [str(option.prompt) for option in init_prompt.query_one(OptionList).options] == list(INIT_PROMPTS)

        init_prompt.value = "English-2"
        await pilot.click("#params-apply")
        assert app.screen is not dialog
        assert app.bench.pane("a").params.init_prompt == "English-2"


async def test_each_bad_value_has_its_message_until_its_field_is_edited(
    make_app: Callable[..., ZhbenchApp], standin_dir: Callable[..., Path]
) -> None:
    app = make_app(preload={"a": str(standin_dir("gpt2-dialogbot"))})
    async with app.run_test(size=SIZE) as pilot:
        await models_loaded(app, "a")
        dialog = await open_editor(pilot, app)
        fields = {name: dialog.query_one(f"#param-{name}", Input) for name in ("temperature", "max_new_tokens", "seed")}
        fields["temperature"].value = "hot"
        fields["max_new_tokens"].value = "99999999999"
        fields["seed"].value = "-3"
        await pilot.click("#params-apply")
        assert app.screen is dialog
        problem = dialog.query_one(".problem", Static)
        assert str(problem.content).splitlines() == [
            "temperature needs a number, got 'hot'",
            "max_new_tokens must be a whole number from 1 to 1048576",
            "seed must be a whole number from 0 to 4294967295 (none: drawn for each reply)",
        ]
        assert all(field.has_class("-invalid") for field in fields.values())

        fields["seed"].focus()
        await pilot.press("backspace", "backspace", "7")  # the seed is edited: its message goes
        assert "seed" not in str(problem.content) and "max_new_tokens" in str(problem.content)
        assert not fields["seed"].has_class("-invalid") and fields["max_new_tokens"].has_class("-invalid")

        fields["temperature"].value = "0.9"
        fields["max_new_tokens"].value = "100"
        await pilot.click("#params-apply")
        assert app.screen is not dialog
        params = app.bench.pane("a").params
        assert (params.temperature, params.max_new_tokens, params.seed) == (0.9, 100, 7)
