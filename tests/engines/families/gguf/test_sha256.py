"""The GGUF family's digest cache is written by zhbench's one whole-file writer: a full disk keeps the old cache
and leaves nothing beside it."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
from pathlib import Path

import pytest

from tests.workbench.tmpfs import tmpfs
from zhbench.engines.families.gguf.sha256 import cache_path, file_sha256


def test_a_full_disk_keeps_the_digest_cache_whole_and_leaves_no_scratch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "one.gguf", tmp_path / "two.gguf"
    first.write_bytes(b"GGUF one")
    second.write_bytes(b"GGUF two")
    with tmpfs(tmp_path / "disk", size="64k") as disk:
        monkeypatch.setenv("XDG_CACHE_HOME", str(disk))
        digest = file_sha256(first)
        cached = cache_path().read_bytes()
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError) as full:
            while True:
                os.write(filler, bytes(4096))
        os.close(filler)
        assert full.value.errno == errno.ENOSPC

        assert file_sha256(second) != digest  # computed all the same; only the cache could not take it
        assert cache_path().read_bytes() == cached  # the old cache, whole
        assert sorted(p.name for p in cache_path().parent.iterdir()) == [cache_path().name]  # no scratch file
        assert file_sha256(first) == digest


def test_a_fifo_in_place_of_the_digest_cache_is_not_waited_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a FIFO would wait for a writer that never comes: the digest is computed and the FIFO left as it
    is (neither read nor replaced)."""
    model = tmp_path / "one.gguf"
    model.write_bytes(b"GGUF one")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache_path().parent.mkdir(parents=True)
    os.mkfifo(cache_path())
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("file_sha256 waited on the FIFO"))
    signal.alarm(5)
    try:
        assert file_sha256(model) == hashlib.sha256(b"GGUF one").hexdigest()
    finally:
        signal.alarm(0)
    assert stat.S_ISFIFO(cache_path().lstat().st_mode)
