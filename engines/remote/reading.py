"""Reading a server's answer within bounds: a deadline for the whole answer (not only for each silence), a cap
on its size once decompressed, and a cap on each line of an event stream.

httpx's own reading bounds only the silence between two reads, and decompresses whatever arrives in one go;
a server that trickles forever, or sends a small gzip body that inflates to gigabytes, would hold zhbench
without end. Here the raw bytes are read as they come and inflated a bounded piece at a time, and the clock
and the count are checked at every piece. A server's every failure to keep within them is a ``RemoteError``.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from zhbench.engines.remote.server import RemoteServer

#: the most an answer may hold once decompressed: a listing, an error body, or a whole streamed reply
MAX_BODY_BYTES = 32 * 1024 * 1024
#: the longest one line of an event stream may be (one chunk of a reply is a few hundred bytes)
MAX_LINE_BYTES = 1024 * 1024
#: how much one step of inflating a compressed answer may produce
INFLATE_STEP = 64 * 1024
#: two or more line ends in a row
BLANK_LINES = re.compile(rb"(?:\r?\n){2,}")
#: the encodings zhbench asks for and inflates itself (any other a server sends is refused)
ACCEPT_ENCODING = "gzip, deflate"


@dataclass
class Bounds:
    """The bounds of reading one answer: ``what`` it is (for the message), the seconds it may take from now,
    its size, and an event that stops the reading early (a cancelled reply)."""

    what: str
    seconds: float
    max_bytes: int = MAX_BODY_BYTES
    cancel: threading.Event | None = None
    started: float = field(default_factory=time.monotonic)

    def overdue(self) -> bool:
        return time.monotonic() - self.started > self.seconds


def body_chunks(server: RemoteServer, response: httpx.Response, bounds: Bounds) -> Iterator[bytes]:
    """The answer's bytes, decompressed, as they come; ends early (quietly) once ``bounds.cancel`` is set."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise server.failure(f"{bounds.what} came compressed as {encoding[:20]!r}, which zhbench did not ask for")
    inflater = None if encoding in ("identity", "") else zlib.decompressobj(zlib.MAX_WBITS | 32)
    received = 0
    for raw in response.iter_raw():
        for piece in _inflated(server, inflater, raw, bounds) if inflater is not None else (raw,):
            received += len(piece)
            if received > bounds.max_bytes:
                raise server.failure(f"{bounds.what} is larger than {bounds.max_bytes // 2**20} MiB; stopped reading")
            if piece:
                yield piece
        if bounds.cancel is not None and bounds.cancel.is_set():
            return
        if bounds.overdue():
            raise server.failure(
                f"{bounds.what} took longer than {bounds.seconds:g}s; stopped reading (the config's deadline_s)"
            )


def _inflated(server: RemoteServer, inflater: zlib._Decompress, raw: bytes, bounds: Bounds) -> Iterator[bytes]:
    """``raw`` inflated at most ``INFLATE_STEP`` bytes at a time, so that a bomb is stopped by the size cap."""
    data = raw
    try:
        while data:
            yield inflater.decompress(data, INFLATE_STEP)
            data = inflater.unconsumed_tail
    except zlib.error:
        raise server.failure(f"{bounds.what} is not valid compressed data") from None


def read_body(server: RemoteServer, response: httpx.Response, bounds: Bounds) -> bytes:
    """The whole answer within ``bounds``."""
    return b"".join(body_chunks(server, response, bounds))


def event_data(server: RemoteServer, response: httpx.Response, bounds: Bounds) -> Iterator[str]:
    """The ``data`` of each server-sent event that has any (comments and keep-alives carry none), each line
    capped at ``MAX_LINE_BYTES``. Follows the event-stream format: ``data:`` lines joined by newlines, an
    empty line ends an event, other fields are ignored."""
    content_type = response.headers.get("content-type", "").partition(";")[0].strip()
    if content_type != "text/event-stream":
        raise server.failure(f"the answer is not an event stream (its Content-Type is {content_type[:40]!r})")
    data: list[str] = []
    for line in _lines(server, body_chunks(server, response, bounds)):
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        if text:
            name, _, value = text.partition(":")
            if name == "data":
                data.append(value.removeprefix(" "))
        elif data:
            joined, data = "\n".join(data).strip(), []
            if joined:
                yield joined
    if data and "\n".join(data).strip():  # a last event the server did not end with an empty line
        yield "\n".join(data).strip()


def _lines(server: RemoteServer, pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream (split at ``\\n``), each capped at ``MAX_LINE_BYTES``; each byte is looked
    at once, however the stream is cut into pieces."""
    partial: list[bytes] = []
    size = 0
    for piece in pieces:
        # A run of blank lines means what one does (an event's end): megabytes of them are a few lines here.
        *ends, rest = BLANK_LINES.sub(b"\n\n", piece).split(b"\n")
        for part in [*ends, None]:
            partial.append(rest if part is None else part)
            size += len(partial[-1])
            if size > MAX_LINE_BYTES:
                raise server.failure(
                    f"a line of the stream is longer than {MAX_LINE_BYTES // 1024} KiB; stopped reading"
                )
            if part is not None:
                yield b"".join(partial)
                partial, size = [], 0
    if partial:
        yield b"".join(partial)
