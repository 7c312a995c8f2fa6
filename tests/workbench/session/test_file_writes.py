"""Every file zhbench writes whole goes through one writer: regular files only, whole or not at all (issue 26 §1)."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from tests.workbench.tmpfs import tmpfs
from zhbench.workbench.cli import main
from zhbench.workbench.session.config import load_config, remember_theme
from zhbench.workbench.session.file_writes import FileWriteError, write_atomically

CONFIG = """theme = "zhbench-dark"
model_dirs = ["~/models", "/srv/models"]

[keymap]
send-active = "ctrl+t"

[servers.vllm]
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "VLLM_API_KEY"
"""


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """Writes past ``size`` bytes fail (EFBIG), as a full disk fails them (ENOSPC): part-way through."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _others(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_a_full_disk_leaves_the_config_whole(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    with file_size_limit(len(CONFIG) // 2):  # the new file is cut half-way, as on a full disk
        problem = remember_theme(config, "zhbench-light")
    assert problem is not None and problem.startswith("theme not saved:") and "\n" not in problem
    assert path.read_text(encoding="utf-8") == CONFIG  # every setting is still there
    reread = load_config(path)
    assert reread.problems == [] and reread.keymap == {"send-active": "ctrl+t"} and "vllm" in reread.servers
    assert _others(tmp_path, "config.toml") == []  # no scratch file left behind
    assert remember_theme(config, "zhbench-light") is None
    assert load_config(path).theme == "zhbench-light" and load_config(path).servers.keys() == {"vllm"}


def test_a_really_full_disk_leaves_the_config_whole(tmp_path: Path):
    """On a tmpfs filled to the last page: the new config needs one page more than the old one freed."""
    head = CONFIG + "\n[params.chatyuan]\n"
    text = head + "# " + "x" * (4096 - len(head.encode()) - 3) + "\n"  # one page exactly: a longer theme needs two
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        path = disk / "config.toml"
        path.write_text(text, encoding="utf-8")
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError) as full:
            while True:
                os.write(filler, bytes(4096))
        os.close(filler)
        assert full.value.errno == errno.ENOSPC
        problem = remember_theme(load_config(path), "zhbench-light")
        assert problem is not None and "No space left on device" in problem and "\n" not in problem
        assert path.read_text(encoding="utf-8") == text and _others(disk, "config.toml") == ["filler"]


def test_no_space_part_way_is_one_line_and_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "run.json"
    path.write_text("old", encoding="utf-8")

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("zhbench.plain.file_writes.os.fsync", full)
    with pytest.raises(FileWriteError) as caught:
        write_atomically(path, "new" * 1000)
    assert str(caught.value).count("\n") == 0 and "No space left on device" in str(caught.value)
    assert path.read_text(encoding="utf-8") == "old" and _others(tmp_path, "run.json") == []


def test_a_rewrite_keeps_the_files_mode_and_a_link_to_it(tmp_path: Path):
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text(CONFIG, encoding="utf-8")
    real.chmod(0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert remember_theme(load_config(link), "zhbench-light") is None
    assert link.is_symlink() and load_config(real).theme == "zhbench-light"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def _special_targets(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    yield "a FIFO", fifo
    folder = tmp_path / "folder"
    folder.mkdir()
    yield "a folder", folder
    device = tmp_path / "null"
    try:  # a device node of our own, never the machine's /dev/null (the old code replaced what it wrote to)
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return
    yield "a character device", device


def test_output_files_are_regular_files_only(tmp_path: Path, capsys):
    for kind, target in _special_targets(tmp_path):
        mode = target.lstat().st_mode
        assert main(["votes", "export", "-o", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is {kind}, not a regular file" in err, err
        assert err.endswith("(-o - writes to standard output)\n"), err
        assert target.lstat().st_mode == mode  # still what it was, not replaced by a file
    assert _others(tmp_path, "") == ["fifo", "folder", "null"] or _others(tmp_path, "") == ["fifo", "folder"]


def test_dash_is_stdout(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert main(["votes", "export", "-o", "-"]) == 0
    assert capsys.readouterr().out == "[]\n"
    assert list(tmp_path.iterdir()) == []


def _votes_export(output: str, stdout: int | IO[str]) -> subprocess.CompletedProcess[str]:
    """``zhbench votes export -o OUTPUT`` in a fresh process, its stdout on ``stdout``, as a shell runs it."""
    command = [sys.executable, "-m", "zhbench", "votes", "export", "-o", output]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1"])
def test_the_names_of_stdout_are_stdout(tmp_path: Path, name: str):
    """A newcomer's `zhbench export … -o /dev/stdout | less` was refused ("not written (No such file or
    directory)"), and `-o /dev/stdout >> notes` replaced the notes where the shell asked to append."""
    piped = _votes_export(name, subprocess.PIPE)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "[]\n", "")
    notes = tmp_path / "notes.txt"
    notes.write_text("kept\n", encoding="utf-8")
    with notes.open("a", encoding="utf-8") as appended:
        assert _votes_export(name, appended).returncode == 0
    assert notes.read_text(encoding="utf-8") == "kept\n[]\n"


def test_a_link_to_a_pipe_is_refused_as_a_fifo_pointing_at_dash(tmp_path: Path, capsys):
    """`-o /dev/stderr` with stderr piped: a link that only the system can follow (to "pipe:[…]")."""
    reader, writer = os.pipe()
    try:
        link = tmp_path / "stderr"
        link.symlink_to(f"/proc/self/fd/{writer}")
        assert main(["votes", "export", "-o", str(link)]) == 1
    finally:
        os.close(reader)
        os.close(writer)
    assert capsys.readouterr().err == (
        f"zhbench: error: {link} is a FIFO, not a regular file: give the name of a file to write "
        "(-o - writes to standard output)\n"
    )
    assert _others(tmp_path, "stderr") == []


@pytest.mark.parametrize("command", [["export", "latest"], ["votes", "export"], ["batch", "report", "run"]])
def test_an_empty_output_path_is_named_empty(tmp_path: Path, capsys, command: list[str]):
    """`-o ''` was taken as the current folder and refused as ". is a folder"."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "-o", ""])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith(
        "error: argument -o/--output: the output path is empty: give a file name, or - for standard output"
    ), err
