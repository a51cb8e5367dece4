"""Decoding Python source bytes to text as the interpreter does.

Apart from `loopsafe.discovery`, which reads the project's files with it, so that a helper
summarising files at start-up (`loopsafe.ahead`) decodes them exactly the same way without
importing the rest of discovery.
"""
from __future__ import annotations

import codecs
import io


class DecodeError(Exception):
    """Source bytes that Python itself would refuse to decode."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def decode_source(data: bytes) -> str:
    """Decode Python source the way the interpreter does: BOM, then PEP 263 cookie, else UTF-8."""
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    if b"coding" not in (data if second < 0 else data[:second]) and not data.startswith(codecs.BOM_UTF8):
        # no BOM, and no cookie in the first two lines (where detect_encoding looks): UTF-8
        encoding = "utf-8"
    else:
        encoding = _declared_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        return _raise_decode(f"cannot decode as {encoding}: {exc.reason}", data, exc.start)
    except LookupError as exc:  # pragma: no cover - detect_encoding already validated it
        return _raise_decode(str(exc), data, None)


def _declared_encoding(data: bytes) -> str:
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # An unknown codec in the cookie, a cookie contradicting the BOM, or (the common
        # case) bytes in the first lines that are not UTF-8, where detect_encoding only
        # says "invalid or missing encoding declaration": find the offending byte instead.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return _raise_decode(f"cannot decode as utf-8: {bad.reason}", data, bad.start)
        return _raise_decode(str(exc), data, None)
    return encoding


def _raise_decode(message: str, data: bytes, offset: int | None) -> str:
    if offset is None:
        raise DecodeError(message)
    line_start = data.rfind(b"\n", 0, offset) + 1
    raise DecodeError(message, data.count(b"\n", 0, offset) + 1, offset - line_start + 1)
