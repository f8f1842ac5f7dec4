"""``${var}`` references in a definition's texts, resolved by the driver at run time from the
environment file it runs with."""

from __future__ import annotations

import re

ENV_VAR = re.compile(r"\$\{([^}]*)\}")
# Guards of names and values match the whole text: `$` would also accept a final newline,
# and `\d` any Unicode digit.
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
