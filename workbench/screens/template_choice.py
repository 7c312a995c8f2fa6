"""The bench's question for a model file that loads only once a chat template is named for it (a GGUF file
from Ollama's store, whose template lives in its Modelfile): which of the catalog's templates, remembered for
that model in the config (``[templates]``), then the model loads with it."""

from __future__ import annotations

from typing import Any, Protocol

from zhbench.widgets.chat_pane import ChatPane
from zhbench.widgets.choice_dialog import ChoiceDialog
from zhbench.workbench.session.bench import Bench
from zhbench.workbench.session.chat_templates import TemplateQuestion, remember_template


class LoadingScreen(Protocol):
    """What of the bench screen the question uses."""

    #: the app: its config, its notifications and its screen stack
    app: Any
    bench: Bench

    def pane_widget(self, pane: str) -> ChatPane: ...

    def load_model(self, pane: str, spec: str, label: str, *, keep_conversation: bool = False) -> None: ...

    def show_load_failure(self, pane: str, what: str, reason: str) -> None: ...


def ask_for_template(screen: LoadingScreen, pane: str, what: str, question: TemplateQuestion) -> None:
    """Ask which template ``what`` (the failed load of ``pane``) takes; the answer is remembered and the model
    loaded again with it (carrying on the conversation as the failed load would have); Cancel leaves the
    pane saying why it did not load."""
    state = screen.bench.pane(pane)
    keep = state.load_keeps_conversation

    def answered(choice: str | None) -> None:
        if choice is None:
            screen.show_load_failure(pane, what, question.reason)
            return
        problem = remember_template(screen.app.config, question.model_id, choice)
        if problem is not None:  # it still loads with the template: only remembering it failed
            screen.app.notify(problem, severity="warning", timeout=10)
        screen.load_model(pane, question.spec, what, keep_conversation=keep)

    guess = (
        f" Ollama's store holds its template as a Go template, which zhbench cannot run: it uses "
        f"{question.suggested}'s special tokens, so {question.suggested} is highlighted."
        if question.suggested
        else ""
    )
    text = (
        f"Its file carries no chat template zhbench can use.{guess} Choose one from zhbench's catalog: it is "
        f"remembered for {question.model_id} in {screen.app.config.path} ([templates]), and the command line "
        "uses it too."
    )
    choices = [(name, name) for name in question.choices]
    title = f"Which chat template does {what} (pane {pane.upper()}) take?"
    screen.pane_widget(pane).set_status(f"{what} needs a chat template: choose one", error=False)
    screen.app.push_screen(ChoiceDialog(title, text, choices, question.suggested), answered)
