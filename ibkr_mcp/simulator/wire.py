"""TWS API socket framing: 4-byte big-endian length prefixes and NUL-terminated text fields."""

from __future__ import annotations

import builtins
import math
import struct
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

#: What IB puts on the wire for "no double value" (Java's Double.MAX_VALUE).
UNSET_DOUBLE = "1.7976931348623157E308"
#: IB's "no int value" (Integer.MAX_VALUE).
UNSET_INTEGER = 2**31 - 1
#: The handshake prefix every client sends before its version range.
API_SIGN = b"API\0"
#: IB refuses messages above this size; so do we (protects the server from junk lengths).
MAX_MSG_LEN = 0xFFFFFF

_LEN = struct.Struct(">I")

Field = str | int | float | Decimal | bool | None


class MalformedMessageError(ValueError):
    """A request whose fields cannot be read as the protocol requires."""


def fmt(value: Field) -> str:
    """Format one field the way TWS does (bools as 0/1, Decimals without exponents)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return ""
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if math.isinf(value):
        return "Infinite"
    return repr(value)


def encode(fields: Iterable[Field]) -> bytes:
    """Encode a whole message (fields then the length prefix) ready for the socket."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode("utf-8", errors="backslashreplace")
    return _LEN.pack(len(payload)) + payload


def encode_raw(fields: Sequence[str]) -> bytes:
    """Encode already formatted fields (the handshake reply)."""
    payload = "".join(f + "\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


def split_frames(buffer: bytearray) -> list[bytes]:
    """Cut every complete length-prefixed frame off the front of ``buffer`` (in place)."""
    frames: list[bytes] = []
    pos = 0
    size = len(buffer)
    while size - pos >= 4:
        (length,) = _LEN.unpack_from(buffer, pos)
        if length > MAX_MSG_LEN:
            raise MalformedMessageError(f"message length {length} exceeds {MAX_MSG_LEN}")
        end = pos + 4 + length
        if end > size:
            break
        frames.append(bytes(buffer[pos + 4 : end]))
        pos = end
    if pos:
        del buffer[:pos]
    return frames


def decode_fields(frame: bytes) -> list[str]:
    """Split a frame into its text fields (the trailing terminator yields no field)."""
    fields = frame.decode("utf-8", errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(payload: bytes) -> tuple[int, int, str]:
    """Parse the client's ``v157..178 +OPTIONS`` handshake text into (min, max, options)."""
    text = payload.decode("ascii", errors="replace").strip("\0 ")
    if not text.startswith("v"):
        raise MalformedMessageError(f"bad handshake {text!r}")
    versions, _, options = text[1:].partition(" ")
    low, sep, high = versions.partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError as exc:
        raise MalformedMessageError(f"bad handshake version {text!r}") from exc
    return lo, hi, options


class FieldReader:
    """Typed, bounds-checked reading of a request's fields (raises ``MalformedMessageError``)."""

    __slots__ = ("_fields", "_pos")

    def __init__(self, fields: Sequence[builtins.str], start: builtins.int = 0) -> None:
        self._fields = fields
        self._pos = start

    @property
    def remaining(self) -> builtins.int:
        """How many fields are left unread."""
        return len(self._fields) - self._pos

    def str(self) -> builtins.str:
        """Next field as text."""
        if self._pos >= len(self._fields):
            raise MalformedMessageError("message ended early")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self, default: builtins.int = 0) -> builtins.int:
        """Next field as an int; empty means ``default``."""
        text = self.str()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError as exc:
                raise MalformedMessageError(f"expected an integer, got {text!r}") from exc
            if as_float != int(as_float):
                raise MalformedMessageError(f"expected an integer, got {text!r}") from None
            return int(as_float)

    def float(self) -> builtins.float | None:
        """Next field as a float; empty (IB's unset) is ``None``."""
        text = self.str()
        if not text:
            return None
        if text == "Infinite":
            return math.inf
        try:
            value = float(text)
        except ValueError as exc:
            raise MalformedMessageError(f"expected a number, got {text!r}") from exc
        return None if value >= 1.7976931348623157e308 or math.isnan(value) else value

    def decimal(self) -> Decimal | None:
        """Next field as an exact Decimal; empty or IB's unset markers are ``None``."""
        text = self.str()
        if not text or text in (UNSET_DOUBLE, "2147483647", "9223372036854775807"):
            return None
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise MalformedMessageError(f"expected a decimal, got {text!r}") from exc
        if not value.is_finite():
            raise MalformedMessageError(f"expected a finite decimal, got {text!r}")
        return value

    def bool(self) -> builtins.bool:
        """Next field as a bool (``1``/``0``, also ``true``/``false``)."""
        text = self.str().strip().lower()
        if text in ("", "0", "false"):
            return False
        if text in ("1", "true"):
            return True
        raise MalformedMessageError(f"expected a boolean, got {text!r}")

    def skip(self, count: builtins.int = 1) -> None:
        """Skip ``count`` fields that the simulator does not use."""
        for _ in range(count):
            self.str()
