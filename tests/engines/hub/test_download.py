"""Pulling a model through the real huggingface_hub client from a fake hub on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest
from filelock import FileLock

from tests.engines.hub.conftest import REPO, WANTED
from tests.engines.hub.fake_hub import COMMIT, FakeHub
from tests.engines.hub.loopback import kill_mid_file
from zhbench.engines.errors import ZhbenchError
from zhbench.engines.hub import download
from zhbench.engines.hub.download import (
    DownloadCancelled,
    DownloadError,
    PullProgress,
    RemoteFile,
    choose_files,
    plan_pull,
    pull,
)
from zhbench.engines.hub.resolve import resolve_model


def files(*names: str) -> list[RemoteFile]:
    return [RemoteFile(name, 10) for name in names]


# --- choosing the files -------------------------------------------------------------------------------


def test_safetensors_win_over_bin_and_training_files_and_other_formats_are_left():
    choice = choose_files(
        files(
            "config.json", "model.safetensors", "pytorch_model.bin", "optimizer.pt", "training_args.bin",
            "tf_model.h5", "flax_model.msgpack", "README.md", ".gitattributes", "onnx/model.onnx", "vocab.txt",
            "generation_config.json", "chat_template.jinja", "tokenizer.model", "rng_state.pth",
        )
    )  # fmt: skip
    assert [f.name for f in choice.files] == [
        "model.safetensors", "config.json", "vocab.txt", "generation_config.json", "chat_template.jinja",
        "tokenizer.model",
    ]  # fmt: skip
    assert {"pytorch_model.bin", "optimizer.pt", "training_args.bin", "rng_state.pth"} <= set(choice.skipped)


def test_a_sharded_model_takes_its_shards_and_index_only():
    choice = choose_files(
        files(
            "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
            "pytorch_model.bin.index.json",
        )
    )  # fmt: skip
    assert {f.name for f in choice.files} == {
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    }  # fmt: skip


def test_bin_weights_with_their_index_when_there_are_no_safetensors():
    choice = choose_files(files("config.json", "pytorch_model.bin", "training_args.bin", "vocab.txt"))
    assert {f.name for f in choice.files} == {"config.json", "pytorch_model.bin", "vocab.txt"}


def test_several_rwkv_checkpoints_must_be_chosen_and_are_listed():
    listing = [RemoteFile("RWKV-4-Pile-7B-20230109-ctx4096.pth", 14_800_000_000), *files("README.md")]
    listing.append(RemoteFile("RWKV-4-Pile-7B-Instruct-test2-20230209.pth", 14_800_000_000))
    with pytest.raises(DownloadError) as caught:
        choose_files(listing)
    message = str(caught.value)
    assert "choose one with --file" in message and "Instruct-test2" in message and "(14 GiB)" in message
    choice = choose_files(listing, pick="*Instruct-test2*")
    assert [f.name for f in choice.files] == ["RWKV-4-Pile-7B-Instruct-test2-20230209.pth"]
    with pytest.raises(DownloadError, match="matches no file"):
        choose_files(listing, pick="*World*")


# --- pulling from the fake hub ------------------------------------------------------------------------


def test_pull_fetches_only_what_the_family_needs_reports_progress_and_is_found(fake_hub: FakeHub, capsys):
    plan = plan_pull(REPO)
    assert {f.name for f in plan.files} == WANTED
    assert plan.commit == COMMIT and plan.endpoint == fake_hub.url
    reports: list[PullProgress] = []
    folder = pull(plan, on_progress=reports.append)

    assert folder.name == COMMIT
    assert fake_hub.fetched() == WANTED  # no .bin twin, no optimizer.pt, no README, no onnx/
    assert reports[-1].finished and reports[-1].done_bytes == reports[-1].total_bytes == plan.total_bytes
    assert any(r.bytes_per_s for r in reports)
    assert resolve_model(REPO) == folder

    from zhbench.workbench.cli import main

    assert main(["models", "--json"]) == 0
    import json

    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[REPO]["path"] == str(folder) and rows[REPO]["size_bytes"] > 2_000_000

    again = plan_pull(REPO)  # a second pull has nothing left to fetch
    assert again.missing_bytes == 0


def test_a_connection_dropped_mid_file_is_resumed_by_the_client_with_a_range_request(fake_hub: FakeHub):
    fake_hub.drop_after["model.safetensors"] = 1_000_000
    folder = pull(plan_pull(REPO))
    gets = fake_hub.gets("model.safetensors")
    assert [g.range for g in gets] == [None, "bytes=1048576-"]  # the 64 KiB chunks that came before the drop
    original = fake_hub.repos[REPO] / "model.safetensors"
    assert (folder / "model.safetensors").read_bytes() == original.read_bytes()


def test_a_missing_repository_is_one_clear_line(fake_hub: FakeHub):
    with pytest.raises(DownloadError) as caught:
        plan_pull("nobody/no-such-model")
    message = str(caught.value)
    assert message.startswith("nobody/no-such-model: no such model repository on http://127.0.0.1:")
    assert "\n" not in message


def test_a_connection_that_keeps_dropping_is_one_clear_line(fake_hub: FakeHub, monkeypatch):
    import huggingface_hub.file_download

    monkeypatch.setattr(huggingface_hub.file_download.time, "sleep", lambda s: None)  # its retry pauses
    fake_hub.always_drop.add("model.safetensors")
    with pytest.raises(DownloadError) as caught:
        pull(plan_pull(REPO))
    message = str(caught.value)
    assert message.startswith(f"{REPO}: the connection to {fake_hub.url} failed")
    assert "run the pull again" in message and "\n" not in message


def test_an_unreachable_hub_is_one_clear_line(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(DownloadError, match=r"the connection to http://127.0.0.1:9 failed .*HF_ENDPOINT"):
        plan_pull(REPO)


def test_offline_mode_is_named(monkeypatch):
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set"):
        plan_pull(REPO)  # the test session runs offline


def test_a_pull_that_does_not_fit_on_the_disk_is_refused_before_it_starts(fake_hub: FakeHub, monkeypatch):
    class Usage:
        free = 2_000_000

    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DownloadError) as caught:
        plan_pull(REPO)
    assert "2.8 MiB to download but only 1.9 MiB free" in str(caught.value)
    assert not [r for r in fake_hub.log if r.file]


def test_a_cancelled_pull_stops_keeps_nothing_half_written_and_a_rerun_completes(fake_hub: FakeHub):
    fake_hub.bytes_per_s = 1_000_000
    cancel = threading.Event()

    def stop_soon(progress: PullProgress) -> None:
        if progress.done_bytes > 200_000:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(DownloadCancelled, match="run the same pull again"):
        pull(plan_pull(REPO), on_progress=stop_soon, cancel=cancel)
    assert time.monotonic() - started < 2.5  # not the whole 2.9 s file
    fake_hub.bytes_per_s = None
    folder = pull(plan_pull(REPO))
    assert {p.name for p in folder.iterdir()} == WANTED


def test_a_pull_killed_mid_file_fetches_that_file_again_from_its_start(fake_hub: FakeHub):
    """huggingface_hub 2.4 writes each file to a temporary name of its own process and never reuses it
    (``file_download._download_to_tmp_and_move``), so a pull killed mid-file fetches that file again from its
    first byte, with no ``Range``; the files finished before are kept. (ModelScope's client continues the file:
    ``test_download_modelscope``.) If this fails because the client now resumes, say so in huggingface.py and the
    README."""
    fake_hub.bytes_per_s = 500_000  # the weights take about 6 s; the small files are not throttled
    kill_mid_file(fake_hub, ["pull", REPO], "model.safetensors", 500_000)
    finished_before = {r.file for r in fake_hub.log if r.file} - {"model.safetensors"}
    assert finished_before == WANTED - {"model.safetensors"}
    fake_hub.log.clear()
    sent_before = fake_hub.sent["model.safetensors"]
    fake_hub.bytes_per_s = None

    folder = pull(plan_pull(REPO))
    assert [r.file for r in fake_hub.log if r.method == "GET" and r.file] == ["model.safetensors"]
    assert [r.range for r in fake_hub.gets("model.safetensors")] == [None]
    size = (fake_hub.repos[REPO] / "model.safetensors").stat().st_size
    assert fake_hub.sent["model.safetensors"] - sent_before == size  # all of it again
    assert {p.name for p in folder.iterdir()} == WANTED


def test_what_a_killed_pull_left_behind_is_removed_by_the_next_unless_another_pull_is_writing_it(
    fake_hub: FakeHub, tmp_path
):
    """The client never reuses a killed process's ``<etag>.<hex>.incomplete``: the next pull removes it, under
    the client's own lock for that blob, so another process's download in progress keeps its file."""
    plan = plan_pull(REPO)
    blobs = plan.cache_dir / f"models--{REPO.replace('/', '--')}" / "blobs"
    blobs.mkdir(parents=True)
    orphan, busy = blobs / "aaaa1111.0badf00d.incomplete", blobs / "bbbb2222.12345678.incomplete"
    orphan.write_bytes(b"\0" * 4096)
    busy.write_bytes(b"\0" * 100)
    locks = plan.cache_dir / ".locks" / f"models--{REPO.replace('/', '--')}"
    locks.mkdir(parents=True)
    with FileLock(locks / "bbbb2222.lock"):  # a download of that blob underway elsewhere
        pull(plan)
    assert not orphan.exists()
    assert busy.exists()
    assert {p.name for p in pull(plan).iterdir()} == WANTED
    assert not busy.exists()  # its download is over: the next pull removes it


def test_a_not_a_hub_id_is_refused():
    with pytest.raises(ZhbenchError, match="not a hub id"):
        plan_pull("just-a-name")
