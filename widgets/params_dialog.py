"""The per-pane parameter editor: one field per decoding setting (a switch for an on/off one), checked
before it closes."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch

from workbench.session.safe_text import visible_text

#: checks the edited values; returns what is wrong, or None
Validator = Callable[[dict[str, str]], str | None]


class ParamsDialog(ModalScreen[dict[str, str] | None]):
    """Edit ``values`` (setting → text; the settings named in ``switches`` are on/off, as ``True``/``False``);
    dismissed with the edited values, or None when cancelled."""

    DEFAULT_CSS = """
    ParamsDialog { align: center middle; }
    ParamsDialog > Vertical { width: 64; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    ParamsDialog Grid { grid-size: 2; grid-columns: 22 1fr; grid-rows: 1; grid-gutter: 1 0; height: auto; margin: 1 0; }
    ParamsDialog .problem { color: $error; height: auto; }
    ParamsDialog Switch { border: none; height: 1; padding: 0; }
    ParamsDialog Horizontal { height: auto; margin-top: 1; }
    ParamsDialog Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="params-cancel")]  # noqa: RUF012

    def __init__(
        self,
        title: str,
        values: dict[str, str],
        defaults: dict[str, str],
        validate: Validator,
        switches: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.title_text = title
        self.values = values
        self.defaults = defaults
        self.validate_values = validate
        self.switches = switches

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(visible_text(self.title_text), markup=False)
            with Grid():
                for name, value in self.values.items():
                    yield Label(name)
                    if name in self.switches:
                        yield Switch(value == str(True), id=f"param-{name}")
                    else:
                        placeholder = "random" if name == "seed" else ""
                        yield Input(value, id=f"param-{name}", placeholder=placeholder, compact=True)
            yield Static("", classes="problem", markup=False)
            with Horizontal():
                yield Button("Apply", variant="primary", id="params-apply")
                yield Button("Upstream defaults", id="params-defaults")
                yield Button("Cancel", id="params-cancel")

    def edited(self) -> dict[str, str]:
        return {name: self._field_value(name) for name in self.values}

    def _field_value(self, name: str) -> str:
        if name in self.switches:
            return str(self.query_one(f"#param-{name}", Switch).value)
        return self.query_one(f"#param-{name}", Input).value.strip()

    @on(Button.Pressed, "#params-apply")
    @on(Input.Submitted)
    def apply(self) -> None:
        values = self.edited()
        problem = self.validate_values(values)
        if problem:
            self.query_one(".problem", Static).update(problem)
            return
        self.dismiss(values)

    @on(Button.Pressed, "#params-defaults")
    def reset_to_defaults(self) -> None:
        for name, value in self.defaults.items():
            if name in self.switches:
                self.query_one(f"#param-{name}", Switch).value = value == str(True)
            elif name in self.values:
                self.query_one(f"#param-{name}", Input).value = value

    @on(Button.Pressed, "#params-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
