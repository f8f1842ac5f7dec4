"""The leak canary: seed a vault with recognisable values, run something, prove none escaped.

Every connector's tests reuse it: seed the vault with :func:`seed_vault`, run a pipeline that
uses the secrets (and fails, retries, prints its plan), collect every text the run produced
(stdout, stderr, logs, generated files, reports, dead-letter records) and call
:func:`assert_no_leak`. It looks for each value raw, URL-encoded (``quote`` and
``quote_plus``), JSON-escaped and base64-encoded (standard and URL-safe, with and without
padding), in text and in bytes, independently of etlc's own redaction code.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

from etlc.vault import FileVault, KdfParams, MasterKey, Reference, Secret

PREFIX = "LEAK_CANARY_"
# Reserved characters, so the URL-encoded and JSON spellings differ from the raw one.
_SPECIAL_TAIL = '/p@ss:w+rd&q=1 "é"'
FAST_KDF = KdfParams(n=2**10)


@dataclass(frozen=True)
class Canary:
    ref: str  # vault://<path>#<key>
    value: str

    def forms(self) -> dict[str, bytes]:
        """Every spelling the canary is searched for, by name."""
        raw = self.value.encode("utf-8")
        forms = {
            "raw": self.value,
            "url-quoted": quote(self.value, safe=""),
            "url-quoted (path)": quote(self.value),
            "url-quoted (form)": quote_plus(self.value),
            "json-escaped": json.dumps(self.value, ensure_ascii=False)[1:-1],
            "json-escaped (ascii)": json.dumps(self.value)[1:-1],
            "base64": base64.b64encode(raw).decode(),
            "base64 (url-safe)": base64.urlsafe_b64encode(raw).decode(),
        }
        forms["base64 (unpadded)"] = forms["base64"].rstrip("=")
        forms["base64 (url-safe, unpadded)"] = forms["base64 (url-safe)"].rstrip("=")
        return {name: form.encode("utf-8") for name, form in forms.items()}


def canary_value(special: bool = True) -> str:
    value = f"{PREFIX}{uuid.uuid4().hex}"
    return value + _SPECIAL_TAIL if special else value


def seed_vault(
    path: Path, master: MasterKey, names: Iterable[str], kdf: KdfParams = FAST_KDF
) -> list[Canary]:
    """A vault at ``path`` (created if missing) holding a fresh canary under each name.

    Names are ``<path>#<key>``; canaries alternate between plain values and values full of
    characters that URL- and JSON-encoding change.
    """
    vault = FileVault(path, master) if path.exists() else FileVault.create(path, master, kdf)
    canaries: list[Canary] = []
    for i, name in enumerate(names):
        ref = Reference.entry(name, str(path))
        value = canary_value(special=i % 2 == 0)
        vault.put(ref, Secret(value))
        canaries.append(Canary(str(ref), value))
    return canaries


def files(root: Path, exclude: Iterable[Path] = ()) -> dict[str, bytes]:
    """The bytes of every file under ``root`` (logs, outputs, stage and generated files)."""
    skipped = {p.resolve() for p in exclude}
    return {
        str(p): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.resolve() not in skipped
    }


def find_leaks(
    texts: Mapping[str, str | bytes] | Iterable[str | bytes], canaries: Iterable[Canary]
) -> list[str]:
    """Where each canary shows up, as ``"<text name>: <form> of <ref>"``; empty means clean."""
    named = texts.items() if isinstance(texts, Mapping) else enumerate(texts)
    hits: list[str] = []
    for name, text in _as_bytes(named):
        for canary in canaries:
            for form_name, form in canary.forms().items():
                if form in text:
                    hits.append(f"{name}: {form_name} of {canary.ref}")
    return hits


def assert_no_leak(
    texts: Mapping[str, str | bytes] | Iterable[str | bytes], canaries: Iterable[Canary]
) -> None:
    canaries = list(canaries)
    assert canaries, "no canaries to look for"
    hits = find_leaks(texts, canaries)
    assert not hits, "secret values leaked:\n" + "\n".join(hits)


def _as_bytes(named: Iterable[tuple[object, str | bytes]]) -> Iterator[tuple[str, bytes]]:
    for name, text in named:
        yield str(name), text.encode("utf-8") if isinstance(text, str) else text
