"""Screenshots of the widgets in the states a person meets, each fed fixed data in a tiny host app."""

from __future__ import annotations

from textual.app import App, ComposeResult

from zhbench.plain.memory_reading import GpuMemory, MemoryReading, PaneMemory
from zhbench.themes import STYLESHEET, THEME_VARIABLE_DEFAULTS, THEMES
from zhbench.widgets.chat_pane import ChatPane
from zhbench.widgets.gpu_meter import GpuMeter
from zhbench.widgets.params_dialog import ParamsDialog

STATS = "42 tokens · first after 0.12s · 35.0 tok/s · eos"


class Host(App[None]):
    """Loads the real stylesheet and themes, like the app."""

    CSS_PATH = STYLESHEET

    def __init__(self, *widgets: object, theme: str = "zhbench-dark") -> None:
        super().__init__()
        self.widgets = widgets
        self.start_theme = theme

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **THEME_VARIABLE_DEFAULTS}

    def compose(self) -> ComposeResult:
        yield from self.widgets  # type: ignore[misc]

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.start_theme


def conversation_host(theme: str) -> Host:
    pane = ChatPane("a", id="pane-a")
    failed = ChatPane("b", id="pane-b")

    async def fill(pilot: object) -> None:
        pane.set_model("ChatYuan-large-v1", "chatyuan · cuda float16\ntemp 0.7 · top_p 1 · top_k 50 · max 512")
        pane.add_message(
            "[bold]这不是粗体[/] \x1b[31m也不是红色 —— 写一首关于长江的诗，要很长很长很长很长很长很长很长", role="user"
        )
        pane.begin_reply().finish("滚滚长江东逝水，\n浪花淘尽英雄。", stats=STATS)
        pane.add_message("再来一首", role="user")
        pane.begin_reply().finish("是非成败转头空", stats=STATS, stopped=True)
        failed.set_status("could not load /models/broken:\n/models/broken/config.json: unreadable JSON", error=True)

    host = Host(pane, failed, theme=theme)
    host.fill = fill  # type: ignore[attr-defined]
    return host


def test_a_conversation_and_a_failed_load(snap_compare) -> None:
    host = conversation_host("zhbench-dark")
    assert snap_compare(host, terminal_size=(100, 24), run_before=host.fill)


def test_a_conversation_in_the_light_theme(snap_compare) -> None:
    host = conversation_host("zhbench-light")
    assert snap_compare(host, terminal_size=(100, 24), run_before=host.fill)


def test_the_parameter_editor(snap_compare) -> None:
    host = Host()
    values = {"temperature": "0.7", "top_p": "1.0", "top_k": "50", "repetition_penalty": "1.0",
              "max_new_tokens": "512", "seed": "", "greedy": "False", "no_repeat_ngram_size": "3"}  # fmt: skip
    presets = {
        "sample": {name: value for name, value in values.items() if name != "seed"},
        "greedy": {"greedy": "True"},
    }

    async def open_dialog(pilot: object) -> None:
        title = "Parameters of pane A: ChatYuan-large-v1"
        host.push_screen(
            ParamsDialog(title, values, presets=presets, validate=lambda v: {}, switches=frozenset({"greedy"}))
        )

    assert snap_compare(host, terminal_size=(80, 26), run_before=open_dialog)


def test_the_meter_with_and_without_a_gpu(snap_compare) -> None:
    with_gpu, without = GpuMeter(id="gpu"), GpuMeter(id="cpu")

    async def show(pilot: object) -> None:
        panes = (PaneMemory("a", "cuda:0", 1_566_000_000, 1_700_000_000), PaneMemory("b", "cuda:0", 990_000_000, None))
        gpu = GpuMemory(0, "NVIDIA H200", 30 * 2**30, 141 * 2**30)
        with_gpu.show(MemoryReading(gpus=(gpu, GpuMemory(1, "NVIDIA H200", None, None)), panes=panes))
        without.show(
            MemoryReading(gpu_note="no NVIDIA GPU (no NVIDIA driver found)", process_ram_bytes=700 * 2**20, panes=panes)
        )

    assert snap_compare(Host(with_gpu, without), terminal_size=(130, 4), run_before=show)
