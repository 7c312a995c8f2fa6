"""The model list with its downloads: a model not on this machine (or a hub id typed into the filter) is
downloaded from its row, asked first, one download at a time, its progress under the list, cancelled from
the palette; once it is on disk, the models are looked for again and it is in the list.

The list itself (``widgets.model_list``) knows only rows; the download runs in ``workers.pull_model``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import on
from textual.message import Message

from zhbench.plain.byte_sizes import format_bytes
from zhbench.widgets.model_list import ModelList
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench import workers

if TYPE_CHECKING:
    from zhbench.engines.hub.hubs import Hub


class RescanAsked(Message):
    """Look for the models on this machine and the servers again (asked, or a download ended)."""


class DownloadingModelList(ModelList):
    """A ``ModelList`` that downloads the model a row asks for (``DownloadRequested``)."""

    def __init__(self, *, preferred_quant: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        #: the quantization taken from a GGUF repository whose row names none (the config's ``quant``)
        self.preferred_quant = preferred_quant
        #: the download underway: its id, and the flag that cancels it
        self._pull: tuple[str, threading.Event] | None = None
        self._gone = False  # unmounted: the app is closing, and a worker may still report

    def on_unmount(self) -> None:
        self._gone = True

    @on(ModelList.DownloadRequested)
    def _download_requested(self, event: ModelList.DownloadRequested) -> None:
        row = event.row
        repo_id = row.hf_id or row.modelscope_id
        if row.available or repo_id is None:
            self.notify(f"{row.name} is already on this machine.")
            return
        if self._pull is not None:
            self.notify(f"{self._pull[0]} is downloading: wait for it, or cancel it from the palette.")
            return
        hub: Hub = "hf" if row.hf_id else "modelscope"
        where = "Hugging Face" if hub == "hf" else "ModelScope"
        question = (
            f"From {where}, only the files its family needs. The size is checked against the free disk before "
            "anything is fetched; Ctrl+P → Cancel download stops it."
        )

        def answered(choice: str | None) -> None:
            if choice == "download":
                self._start_download(repo_id, hub, row.quantization)

        # asked first: a letter typed in the list on its way to the filter must not start gigabytes
        title = f"Download {repo_id}" + (f" ({row.quantization})?" if row.quantization else "?")
        self.app.push_screen(QuestionDialog(title, question, [("download", "Download")]), answered)

    def _start_download(self, repo_id: str, hub: Hub, quant: str | None = None) -> None:
        if self._pull is not None or self._gone:
            return
        cancel = threading.Event()
        self._pull = (repo_id, cancel)
        self.set_status(f"{repo_id}: listing its files…")
        self.run_worker(
            lambda: workers.pull_model(self.post_message, repo_id, hub, cancel, quant, self.preferred_quant),
            thread=True,
            group="pull",
            exit_on_error=False,
        )

    def cancel_download(self) -> None:
        """Stop the download underway (its worker stops at its next chunk)."""
        if self._pull is None:
            self.notify("Nothing is downloading.")
            return
        self._pull[1].set()

    @on(workers.PullProgressed)
    def _pull_progressed(self, event: workers.PullProgressed) -> None:
        if self._gone:
            return
        progress = event.progress
        speed = f" · {format_bytes(int(progress.bytes_per_s))}/s" if progress.bytes_per_s else ""
        left = f" · {progress.eta_s:.0f}s left" if progress.eta_s is not None else ""
        done = f"{format_bytes(progress.done_bytes)} of {format_bytes(progress.total_bytes)}"
        self.set_status(f"{event.repo_id}: {done}{speed}{left}")

    @on(workers.PullEnded)
    def _pull_ended(self, event: workers.PullEnded) -> None:
        self._pull = None
        if self._gone:
            return
        self.set_status(None)
        if event.problem is None:
            self.notify(f"{event.repo_id} downloaded: it is in the list now.")
            self.post_message(RescanAsked())
        else:
            self.notify(f"Download of {event.repo_id} stopped: {event.problem}", severity="error", timeout=15)
