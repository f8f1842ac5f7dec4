"""Literal credentials in a definition: only ``vault://`` references may stand for one.

A value under a credential's name (``password``, ``api_key``, ...; the vault's own
``CREDENTIAL_NAME``) must be a reference (E501), a reference must be one the vault resolves
(E502), and no URL may carry a ``user:password@`` part (E501). The rule is the vault's, so
lint accepts exactly the references a driver can resolve.
"""

from __future__ import annotations

import re

from etlc.dsl.diagnostics import Diagnostic, Span, diag
from etlc.dsl.tree import JArray, JObject, JScalar, JValue
from etlc.vault.reference import CREDENTIAL_NAME, is_reference, is_well_formed

_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def credential_problems(node: JValue, key: str = "") -> tuple[list[Diagnostic], set[Span]]:
    """E501/E502 for the tree under ``node``, and the spans of every credential-named key
    (the shape check's "unknown key" is not repeated for them)."""
    found: list[Diagnostic] = []
    spans: set[Span] = set()
    _walk(node, key, found, spans)
    return found, spans


def _walk(node: JValue, key: str, found: list[Diagnostic], spans: set[Span]) -> None:
    if isinstance(node, JObject):
        for m in node.members:
            if CREDENTIAL_NAME.search(m.key) and isinstance(m.value, JScalar):
                spans.add(m.key_span)
                value = m.value.value
                if not (isinstance(value, str) and is_reference(value)):
                    found.append(
                        diag(
                            "E501",
                            f"literal credential in `{m.key}`",
                            m.value.span,
                            "store it in the vault and write `vault://<path>#<key>`",
                            key=m.key,
                        )
                    )
            _walk(m.value, m.key, found, spans)
    elif isinstance(node, JArray):
        for item in node.items:
            _walk(item, key, found, spans)
    elif isinstance(node.value, str):
        text = node.value
        if is_reference(text) and not is_well_formed(text):
            found.append(
                diag(
                    "E502",
                    "malformed vault reference",
                    node.span,
                    "write `vault://<path>#<key>`, e.g. `vault://db/crm#password`",
                )
            )
        elif _URL_USERINFO.match(text):
            found.append(
                diag(
                    "E501",
                    "a URL with an embedded password",
                    node.span,
                    "remove the user:password@ part; credentials come from the vault",
                    key=key,
                )
            )
