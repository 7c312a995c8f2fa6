"""The per-pane parameter editor: a preset picker, then one field per decoding setting (a switch for an
on/off one, a list for one with known values), checked before it closes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, Switch

from zhbench.plain.safe_text import visible_text

#: checks the edited values; returns what is wrong with each bad setting (setting -> one message)
Validator = Callable[[dict[str, str]], dict[str, str]]
#: the field a setting is edited in
Field = Input | Switch | Select[str]


class ParamsDialog(ModalScreen[dict[str, str] | None]):
    """Edit ``values`` (setting → text; the settings named in ``switches`` are on/off, as ``True``/``False``;
    those in ``choices`` take one of the values listed); dismissed with the edited values, or None when
    cancelled. Picking one of ``presets`` (the first is the upstream default) fills the fields it names. A
    problem ``validate`` finds is shown until its field is edited."""

    DEFAULT_CSS = """
    ParamsDialog { align: center middle; }
    ParamsDialog > Vertical { width: 64; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    ParamsDialog Grid { grid-size: 2; grid-columns: 22 1fr; grid-rows: 1; height: auto; margin: 1 0; }
    ParamsDialog .problem { color: $error; height: auto; }
    ParamsDialog Switch { border: none; height: 1; padding: 0; }
    ParamsDialog .buttons { height: auto; margin-top: 1; }
    ParamsDialog Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="params-cancel")]  # noqa: RUF012

    def __init__(
        self,
        title: str,
        values: dict[str, str],
        *,
        presets: Mapping[str, Mapping[str, str]],
        validate: Validator,
        switches: frozenset[str] = frozenset(),
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.values = values
        self.presets = presets
        self.validate_values = validate
        self.switches = switches
        self.choices = choices or {}
        #: what is wrong with each setting, from the last Apply, until its field is edited
        self.problems: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(visible_text(self.title_text), markup=False)
            with Grid():
                yield Label("preset")
                names = list(self.presets)
                options = [(f"{name} (upstream default)" if name == names[0] else name, name) for name in names]
                preset = self.matching_preset(self.values)
                yield Select(options, prompt="custom", value=preset or Select.NULL, id="params-preset", compact=True)
                for name, value in self.values.items():
                    yield Label(name)
                    yield self._field(name, value)
            yield Static("", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="params-apply")
                yield Button("Cancel", id="params-cancel")

    def _field(self, name: str, value: str) -> Widget:
        field_id = f"param-{name}"
        if name in self.switches:
            return Switch(value == str(True), id=field_id, classes="param")
        if name in self.choices:
            options = [(choice, choice) for choice in self.choices[name]]
            return Select(options, value=value, allow_blank=False, id=field_id, classes="param", compact=True)
        placeholder = "random" if name == "seed" else ""
        return Input(value, id=field_id, classes="param", placeholder=placeholder, compact=True)

    def field(self, name: str) -> Field:
        return cast("Field", self.query_one(f"#param-{name}"))

    def edited(self) -> dict[str, str]:
        return {name: self._field_value(self.field(name)) for name in self.values}

    @staticmethod
    def _field_value(field: Field) -> str:
        if isinstance(field, Input):
            return field.value.strip()
        return str(field.value)

    def matching_preset(self, values: Mapping[str, str]) -> str | None:
        """The preset whose every setting ``values`` has, if any."""
        return next(
            (name for name, preset in self.presets.items() if all(values.get(k) == v for k, v in preset.items())),
            None,
        )

    @on(Select.Changed, "#params-preset")
    def fill_from_preset(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str):  # "custom": the fields as they are
            return
        for name, value in self.presets[event.value].items():
            if name not in self.values:
                continue
            field = self.field(name)
            if isinstance(field, Switch):
                field.value = value == str(True)
            else:
                field.value = value

    @on(Input.Changed, ".param")
    @on(Switch.Changed, ".param")
    @on(Select.Changed, ".param")
    def field_edited(self, event: Input.Changed | Switch.Changed | Select.Changed) -> None:
        """An edited field's problem goes; the preset picker names the preset the fields now match."""
        name = (event.control.id or "").removeprefix("param-")
        if self.problems.pop(name, None) is not None:
            self._show_problems()
        picker = self.query_one("#params-preset", Select)
        with picker.prevent(Select.Changed):  # naming the preset is not choosing it
            picker.value = self.matching_preset(self.edited()) or Select.NULL

    def _show_problems(self) -> None:
        self.query_one(".problem", Static).update("\n".join(self.problems.values()))
        for name in self.values:
            self.field(name).set_class(name in self.problems, "-invalid")

    @on(Button.Pressed, "#params-apply")
    @on(Input.Submitted)
    def apply(self) -> None:
        values = self.edited()
        self.problems = self.validate_values(values)
        if self.problems:
            self._show_problems()
            return
        self.dismiss(values)

    @on(Button.Pressed, "#params-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
