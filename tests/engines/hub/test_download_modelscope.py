"""Pulling a model through the real modelscope client from a fake ModelScope on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.engines.hub.conftest import REPO, WANTED
from tests.engines.hub.fake_modelscope import FakeModelScope
from tests.engines.hub.loopback import kill_mid_file
from zhbench.engines.hub import download
from zhbench.engines.hub.download import DownloadCancelled, DownloadError, PullProgress, plan_pull, pull
from zhbench.engines.hub.resolve import resolve_model

WEIGHTS = "model.safetensors"


def snapshot(cache: Path) -> Path:
    return cache / "models" / REPO.replace("/", "--") / "snapshots" / "master"


def original(hub: FakeModelScope) -> bytes:
    return (hub.repos[REPO] / WEIGHTS).read_bytes()


def client_retries(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """The client retries a dropped file 5 times, waiting up to 16 s between tries; here ``count`` times."""
    import modelscope_hub._download

    monkeypatch.setattr(modelscope_hub._download, "DOWNLOAD_RETRY_TIMES", count)


def test_a_pull_fetches_only_what_the_family_needs_reports_progress_and_is_found(
    fake_modelscope: FakeModelScope, tmp_path: Path
):
    plan = plan_pull(REPO, hub="modelscope")
    assert {f.name for f in plan.files} == WANTED
    assert plan.endpoint == fake_modelscope.url and plan.revision == "master"
    left = {"pytorch_model.bin", "optimizer.pt", "training_args.bin", "README.md", "onnx/model.onnx"}
    assert set(plan.skipped) == left  # the folder onnx, listed beside its file, is no file to skip
    reports: list[PullProgress] = []
    folder = pull(plan, on_progress=reports.append)

    assert folder == snapshot(tmp_path / "ms-cache")
    assert fake_modelscope.fetched() == WANTED  # no .bin twin, no optimizer.pt, no README, nothing under onnx/
    assert {p.name for p in folder.iterdir()} == WANTED
    assert (folder / WEIGHTS).read_bytes() == original(fake_modelscope)
    assert reports[-1].finished and reports[-1].done_bytes == reports[-1].total_bytes == plan.total_bytes
    assert any(r.bytes_per_s for r in reports) and any(r.file == WEIGHTS and not r.finished for r in reports)
    assert resolve_model(REPO) == folder

    again = plan_pull(REPO, hub="modelscope")  # a second pull has nothing left to fetch, and fits anywhere
    assert again.cached_bytes == again.total_bytes and again.missing_bytes == 0
    fake_modelscope.log.clear()
    done: list[PullProgress] = []
    assert pull(again, on_progress=done.append) == folder
    assert not fake_modelscope.fetched() and done[-1].done_bytes == plan.total_bytes


def test_the_endpoint_and_the_cache_are_read_at_each_pull(
    fake_modelscope: FakeModelScope, repo_folder: Path, tmp_path: Path, monkeypatch
):
    """The client reads its settings once per process; zhbench hands it those of the moment (the older
    ``MODELSCOPE_DOMAIN`` too)."""
    pull(plan_pull(REPO, hub="modelscope"))
    other = FakeModelScope({REPO: repo_folder}).start()
    try:
        monkeypatch.delenv("MODELSCOPE_ENDPOINT")
        monkeypatch.setenv("MODELSCOPE_DOMAIN", other.url)
        monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "elsewhere"))
        plan = plan_pull(REPO, hub="modelscope")
        assert plan.endpoint == other.url and plan.missing_bytes == plan.total_bytes
        assert pull(plan) == snapshot(tmp_path / "elsewhere")
        assert other.fetched() == WANTED
    finally:
        other.stop()


def test_a_missing_repository_is_one_clear_line(fake_modelscope: FakeModelScope):
    with pytest.raises(DownloadError) as caught:
        plan_pull("nobody/no-such-model", hub="modelscope")
    message = str(caught.value)
    assert message.startswith(f"nobody/no-such-model: no such model repository on {fake_modelscope.url} (")
    assert "`modelscope login`" in message and "\n" not in message


def test_a_connection_dropped_mid_file_is_resumed_by_the_client_with_a_range_request(fake_modelscope: FakeModelScope):
    fake_modelscope.drop_after[WEIGHTS] = 1_000_000
    folder = pull(plan_pull(REPO, hub="modelscope"))
    assert [g.range for g in fake_modelscope.gets(WEIGHTS)] == [None, "bytes=1048576-"]  # the 64 KiB chunks sent
    assert (folder / WEIGHTS).read_bytes() == original(fake_modelscope)


def test_a_connection_that_keeps_dropping_is_one_clear_line(fake_modelscope: FakeModelScope, monkeypatch):
    client_retries(monkeypatch, 1)  # the first retry comes at once
    fake_modelscope.always_drop.add(WEIGHTS)
    with pytest.raises(DownloadError) as caught:
        pull(plan_pull(REPO, hub="modelscope"))
    message = str(caught.value)
    assert message.startswith(f"{REPO}: the connection to {fake_modelscope.url} failed (NetworkError: ")
    assert "MODELSCOPE_ENDPOINT, and run the pull again to resume" in message and "\n" not in message
    assert len(fake_modelscope.gets(WEIGHTS)) == 2  # the try and the one retry, then it gave up


def test_a_pull_that_does_not_fit_on_the_disk_is_refused_before_it_starts(fake_modelscope: FakeModelScope, monkeypatch):
    class Usage:
        free = 2_000_000

    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DownloadError) as caught:
        plan_pull(REPO, hub="modelscope")
    message = str(caught.value)
    assert "2.8 MiB to download but only 1.9 MiB free" in message and "(MODELSCOPE_CACHE)" in message
    assert not fake_modelscope.fetched()


def test_a_cancelled_pull_stops_at_once_and_the_next_continues_the_file(fake_modelscope: FakeModelScope):
    """The client retries a file after any error its progress hook raises, so a cancel reaches it as a
    ``BaseException``: the pull stops within a chunk, and its partial file is what the next one continues."""
    fake_modelscope.bytes_per_s = 1_000_000
    cancel = threading.Event()

    def stop_soon(progress: PullProgress) -> None:
        if progress.done_bytes > 300_000:
            cancel.set()

    plan = plan_pull(REPO, hub="modelscope")
    started = time.monotonic()
    with pytest.raises(DownloadCancelled, match="run the same pull again"):
        pull(plan, on_progress=stop_soon, cancel=cancel)
    assert time.monotonic() - started < 2.5  # not the 2.9 s of the file, nor the ~30 s of the client's retries
    assert len(fake_modelscope.gets(WEIGHTS)) == 1

    fake_modelscope.bytes_per_s = None
    folder = pull(plan_pull(REPO, hub="modelscope"))
    resumed = fake_modelscope.gets(WEIGHTS)[-1].range
    assert resumed is not None and int(resumed.removeprefix("bytes=").rstrip("-")) > 0
    assert (folder / WEIGHTS).read_bytes() == original(fake_modelscope)


def test_a_failed_pull_leaves_a_partial_file_counted_as_here_not_as_transferred(
    fake_modelscope: FakeModelScope, monkeypatch
):
    """The next pull's plan counts the partial file (the disk check asks room for the rest only), and its
    speed is the bytes that came over the network, not those the client found on the disk."""
    client_retries(monkeypatch, 0)
    fake_modelscope.drop_after[WEIGHTS] = 2_000_000
    with pytest.raises(DownloadError, match="the connection to"):
        pull(plan_pull(REPO, hub="modelscope"))
    size = len(original(fake_modelscope))
    partial = fake_modelscope.sent[WEIGHTS]  # 31 chunks of 64 KiB
    assert partial == 2_031_616

    plan = plan_pull(REPO, hub="modelscope")
    assert plan.cached_bytes == plan.total_bytes - size + partial  # the small files came before the drop
    fake_modelscope.bytes_per_s = 1_000_000  # the last 0.83 MB takes 0.83 s
    reports: list[PullProgress] = []
    folder = pull(plan, on_progress=reports.append)
    assert fake_modelscope.gets(WEIGHTS)[-1].range == f"bytes={partial}-"
    assert fake_modelscope.sent[WEIGHTS] == size
    first = next(r for r in reports if r.file == WEIGHTS)
    assert first.done_bytes >= plan.cached_bytes  # the small files found complete, and the partial file
    assert reports[-1].bytes_per_s is not None and reports[-1].bytes_per_s < 1_200_000  # ~0.83 MB in ~0.85 s
    assert (folder / WEIGHTS).read_bytes() == original(fake_modelscope)


def test_a_pull_killed_mid_file_is_continued_by_the_next_from_where_it_stopped(fake_modelscope: FakeModelScope):
    """The client keeps ``model.safetensors.incomplete`` beside the snapshot; a pull killed with SIGKILL (no
    clean-up at all) leaves it, and the next pull, in another process, asks for the rest with a ``Range``."""
    fake_modelscope.bytes_per_s = 500_000  # the weights take about 6 s; the small files are not throttled
    kill_mid_file(fake_modelscope, ["pull", REPO, "--from", "modelscope"], WEIGHTS, 1_000_000)
    fake_modelscope.bytes_per_s = None
    sent_before = fake_modelscope.sent[WEIGHTS]
    fake_modelscope.log.clear()

    plan = plan_pull(REPO, hub="modelscope")
    folder = pull(plan)
    [again] = fake_modelscope.gets(WEIGHTS)
    assert again.range is not None
    start = int(again.range.removeprefix("bytes=").rstrip("-"))
    size = len(original(fake_modelscope))
    assert 0 < start <= sent_before  # what had reached the disk when it died
    assert fake_modelscope.sent[WEIGHTS] - sent_before == size - start  # only the rest came again
    assert (folder / WEIGHTS).read_bytes() == original(fake_modelscope)
    assert fake_modelscope.fetched() == {WEIGHTS}  # the small files finished before the kill


def test_an_unreachable_modelscope_is_one_clear_line_with_no_client_logs_and_no_resume(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import modelscope_hub._legacy_api

    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("MODELSCOPE_LOG_LEVEL", raising=False)
    monkeypatch.setattr(modelscope_hub._legacy_api.time, "sleep", lambda seconds: None)  # its listing's retries
    with pytest.raises(DownloadError) as caught:
        plan_pull(REPO, hub="modelscope")
    assert str(caught.value) == (
        f"{REPO}: the connection to http://127.0.0.1:9 failed (ConnectionRefusedError: [Errno 111] Connection "
        "refused); check the network or MODELSCOPE_ENDPOINT"
    )  # nothing had started: no resume, and none of the client's retry warnings on stderr
    assert capfd.readouterr().err == ""
