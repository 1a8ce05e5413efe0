"""Short signed tokens for tracking links and app open references.

A token is base64url(kind byte + varint(broadcast id) + varint(endpoint id) + 10-byte MAC):
about 24 characters, so a whole tracking URL stays well under the 75 characters at which
Python's email generator starts RFC 2047-encoding headers. The MAC is HMAC-SHA256 under a
key derived from the hub secret for this purpose only; the kind byte keeps a pixel token from
being replayed as a click or an app open reference.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

MAC_BYTES = 10
MAX_TOKEN_CHARS = 48  # anything longer is malformed before we even decode it
TokenKind = Literal["open", "click", "app"]
_KIND_BYTES: dict[TokenKind, int] = {"open": 0x6F, "click": 0x63, "app": 0x61}
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{8,48}$")


@dataclass(frozen=True, slots=True)
class TrackedPair:
    broadcast_id: int
    endpoint_id: int


@functools.lru_cache(maxsize=4)  # one hub secret: derived once, not per token (per email)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"notify.stats.tracking.v1", hashlib.sha256).digest()


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("ids are non-negative")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):  # at most 70 bits: refuse endless continuation bytes
        if pos >= len(data):
            raise ValueError("truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint too long")


def sign_token(secret: str, kind: TokenKind, broadcast_id: int, endpoint_id: int) -> str:
    payload = bytes([_KIND_BYTES[kind]]) + _varint(broadcast_id) + _varint(endpoint_id)
    mac = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def verify_token(secret: str, kind: TokenKind, token: str) -> TrackedPair | None:
    """The (broadcast, endpoint) a token was issued for, or None when forged or malformed."""
    if not _TOKEN_CHARS.match(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 3 + MAC_BYTES:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected) or payload[0] != _KIND_BYTES[kind]:
        return None
    try:
        broadcast_id, pos = _read_varint(payload, 1)
        endpoint_id, pos = _read_varint(payload, pos)
    except ValueError:
        return None
    if pos != len(payload):
        return None
    # Re-encoding must give the same token: no alternative spellings of one pair.
    if sign_token(secret, kind, broadcast_id, endpoint_id) != token:
        return None
    return TrackedPair(broadcast_id, endpoint_id)
