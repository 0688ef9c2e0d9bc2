"""Content decoding with a bound on every step: a compressed body is inflated at most PIECE
bytes at a time, so a reader that stops at its limit holds no more than that limit plus
one piece, whatever the compression ratio (a 1 GiB gzip bomb inflates to the limit, not
to 1 GiB, and not by 64 MB per network read as a plain decompress() call would).

httpx decodes bodies itself but with one unbounded decompress() per network read; this
module replaces that step for the bodies this client reads (only gzip and deflate are
asked for, so only those, and identity, are accepted)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from ..protocol._errors import APIResponseValidationError

__all__ = ["ACCEPT_ENCODING", "Inflater"]

ACCEPT_ENCODING = "gzip, deflate"
PIECE = 64 * 1024


class _Step:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self.z = zlib.decompressobj(wbits)
        self.first = encoding == "deflate"  # "deflate" may be raw or zlib-wrapped: sniffed once

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.first and data:
            self.first = False
            try:
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(data[:2])
            except zlib.error:
                self.z = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            while data:
                out = self.z.decompress(data, PIECE)
                if out:
                    yield out
                data = self.z.unconsumed_tail
        except zlib.error as exc:
            raise APIResponseValidationError(f"the {self.encoding} body is corrupt ({exc})",
                                             status_code=0, body="") from None


class Inflater:
    """Undo a response's Content-Encoding, piece by piece."""

    def __init__(self, content_encoding: str) -> None:
        encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        encodings = [e for e in encodings if e != "identity"]
        unknown = [e for e in encodings if e not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise APIResponseValidationError(
                f"the answer is encoded as {content_encoding!r}; this client asked for "
                f"{ACCEPT_ENCODING!r} only", status_code=0, body="")
        if len(encodings) > 3:
            raise APIResponseValidationError(f"the answer is encoded {len(encodings)} times over",
                                             status_code=0, body="")
        self.steps = [_Step(e) for e in reversed(encodings)]  # the last applied is undone first

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self.steps:
            if data:
                yield data
            return
        yield from self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self.steps):
            yield data
            return
        for piece in self.steps[index].feed(data):
            yield from self._through(index + 1, piece)
