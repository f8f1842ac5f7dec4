"""Text with every unprintable character written as a backslash escape.

One rule for everything etlc shows or embeds: generated code (where the escapes are read
back by Python), shell comments, and diagnostics on a terminal or in a CI log (where a raw
newline, carriage return or ESC would let a definition forge lines or colours).
"""

from __future__ import annotations

# Escapes a reader knows by sight; every other unprintable character is written by number.
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, also: str = "") -> str:
    """``text`` with unprintable characters, and each character of ``also``, escaped.

    Unprintable is ``str.isprintable``'s meaning: line and paragraph separators (``\\n``,
    U+0085, U+2028), C0/C1 controls, NUL, format characters (bidi overrides), lone
    surrogates and unassigned code points. The result holds none of them, so it is one line
    and always encodes as UTF-8; inside a Python string literal it reads back as ``text``
    when ``also`` holds ``\\`` and the closing quote.
    """
    if text.isprintable() and not any(ch in text for ch in also):
        return text
    out: list[str] = []
    for ch in text:
        if ch.isprintable() and ch not in also:
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch.isprintable():
            out.append("\\" + ch)
        else:
            out.append(_numbered(ord(ch)))
    return "".join(out)


def _numbered(point: int) -> str:
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"
