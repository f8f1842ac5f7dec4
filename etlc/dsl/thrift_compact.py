"""Thrift's compact protocol, read only and only as far as asked: what a Parquet footer is.

A struct reads as ``{field id: value}``; lists as Python lists; binaries as bytes. Every
length is checked against the bytes there are, so a damaged or hostile file ends in
:class:`ThriftError`, never in a huge allocation or an endless loop.
"""

from __future__ import annotations

import struct
from typing import Any

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
_MAX_DEPTH = 32


class ThriftError(ValueError):
    """Bytes that are not the compact protocol's."""


class CompactReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def _byte(self) -> int:
        if self.at >= len(self.data):
            raise ThriftError("ends in the middle of a value")
        value = self.data[self.at]
        self.at += 1
        return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise ThriftError(f"a length of {n} runs past the end")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self._byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ThriftError("a number longer than 64 bits")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise ThriftError("nested deeper than any Parquet footer")
        if kind in (TRUE, FALSE):
            return kind == TRUE
        if kind == BYTE:
            return struct.unpack("b", self.take(1))[0]
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if kind == BINARY:
            return self.take(self.varint())
        if kind in (LIST, SET):
            return self._list(depth)
        if kind == MAP:
            return self._map(depth)
        if kind == STRUCT:
            return self.struct(depth + 1)
        raise ThriftError(f"unknown type {kind}")

    def _list(self, depth: int) -> list[Any]:
        header = self._byte()
        size, kind = header >> 4, header & 0x0F
        if size == 15:
            size = self.varint()
        if size > len(self.data) - self.at:  # each element takes a byte at least
            raise ThriftError(f"a list of {size} runs past the end")
        if kind in (TRUE, FALSE):  # in a list, each boolean is a byte of its own
            return [self._byte() == TRUE for _ in range(size)]
        return [self.value(kind, depth + 1) for _ in range(size)]

    def _map(self, depth: int) -> dict[Any, Any]:
        size = self.varint()
        if size == 0:
            return {}
        if size > len(self.data) - self.at:
            raise ThriftError(f"a map of {size} runs past the end")
        kinds = self._byte()
        if kinds >> 4 not in (BYTE, I16, I32, I64, DOUBLE, BINARY):
            raise ThriftError(f"a map keyed by type {kinds >> 4}")  # no footer has one
        return {
            self.value(kinds >> 4, depth + 1): self.value(kinds & 0x0F, depth + 1)
            for _ in range(size)
        }

    def struct(self, depth: int = 0, until: int | None = None) -> dict[int, Any]:
        """A struct's fields; with ``until``, stops right after reading that field."""
        fields: dict[int, Any] = {}
        last = 0
        while True:
            header = self._byte()
            kind = header & 0x0F
            if kind == STOP:
                return fields
            delta = header >> 4
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind, depth)
            if last == until:
                return fields
