"""What a definition takes from its environment files: every ``${var}`` it uses defined, and
every connection profile it names defined for the step's system, in each environment file.

Environment files are read once per definition, by the same reading as their own lint; what
is wrong inside one is that lint's to say, at its line and column.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etlc.dsl.diagnostics import Diagnostic, Span, diag, did_you_mean
from etlc.dsl.environments import check_environments
from etlc.dsl.steps.contract import CheckOptions
from etlc.dsl.tree import JArray, JObject, JValue
from etlc.dsl.variables import ENV_VAR

# Undefined variables reported one by one per environment file; the rest are counted.
MAX_MISSING_VARIABLES = 100


def reference_problems(
    file: str,
    tree: JValue,
    options: CheckOptions,
    variables: Set[str],
    connections: Mapping[str, tuple[str, Span]],
) -> list[Diagnostic]:
    """``variables``: the names of the ``${var}`` the definition uses; ``connections``: each
    profile name it uses, with the system of the step naming it first and where."""
    check = _References(file, tree, options, variables, connections)
    check.variables_defined()
    check.connections_defined()
    return check.found


@dataclass
class _References:
    file: str
    tree: JValue
    options: CheckOptions
    variables: Set[str]
    connections: Mapping[str, tuple[str, Span]]
    found: list[Diagnostic] = field(default_factory=list)
    _env_cache: list[tuple[Path, Any]] | None = None
    _uses: dict[str, Span] | None = None  # each ${var}'s first use, found in one walk

    def error(self, code: str, message: str, span: Span, hint: str = "", **params: Any) -> None:
        self.found.append(diag(code, message, span, hint, **params))

    def _env_docs(self) -> list[tuple[Path, Any]]:
        """Every environment file with its content as the driver reads it (None when unusable),
        read once, and by the same reading as the environment files' own lint."""
        if self._env_cache is None:
            self._env_cache = []
            # Confined to env/ like any project file: a symlink to ~/.aws/... is refused. What
            # is wrong inside a file is the file's own lint's to say, at its line:col.
            for checked in check_environments(self.options.env_dir, self.options.project_roots):
                refused = checked.refused
                if refused is not None and refused.code is not None:
                    # Unreadable or not JSON (no code): defines nothing, as before.
                    hint = refused.hint or "fix or remove the environment file"
                    self.error(refused.code, refused.message, Span.point(self.file), hint)
                self._env_cache.append((Path(checked.file), checked.doc))
        return self._env_cache

    def variables_defined(self) -> None:
        if not self.variables:
            return
        files = self._env_docs()
        if not files:
            self.found.append(
                diag(
                    "E207",
                    "the definition uses ${...} variables but no environment file was found",
                    Span.point(self.file),
                    f"add {self.options.env_hint}/<env>.json with a `variables` object",
                )
            )
            return
        for env_file, doc in files:
            try:
                defined = set(doc.get("variables", {}))
            except (ValueError, AttributeError, TypeError):
                defined = set()
            missing = sorted(self.variables - defined)
            for var in missing[:MAX_MISSING_VARIABLES]:
                self.found.append(
                    diag(
                        "E207",
                        f"variable `{var}` is not defined in {env_file.name}",
                        self._first_use(var),
                        f'add "{var}" to `variables` in {env_file}',
                        variable=var,
                        env=env_file.name,
                    )
                )
            if len(missing) > MAX_MISSING_VARIABLES:
                rest = len(missing) - MAX_MISSING_VARIABLES
                self.error(
                    "E207",
                    f"{rest} more variables are not defined in {env_file.name}",
                    self._first_use(missing[MAX_MISSING_VARIABLES]),
                    f"define the variables the definition uses in {env_file}",
                    env=env_file.name,
                )

    def connections_defined(self) -> None:
        """Every profile a step names must exist, for its system, in every environment file."""
        if not self.connections:
            return
        files = self._env_docs()
        if not files:
            name, (_, span) = next(iter(sorted(self.connections.items())))
            self.error(
                "E211",
                f"connection `{name}` needs an environment file with `connections`",
                span,
                f"add {self.options.env_hint}/<env>.json with a `connections` object",
                connection=name,
            )
            return
        for env_file, doc in files:
            try:
                profiles = doc.get("connections", {})
            except AttributeError:
                profiles = {}
            for name, (system, span) in sorted(self.connections.items()):
                profile = profiles.get(name) if isinstance(profiles, dict) else None
                if not isinstance(profile, dict):
                    self.error(
                        "E211",
                        f"connection `{name}` is not defined in {env_file.name}",
                        span,
                        did_you_mean(name, profiles)
                        if isinstance(profiles, dict) and profiles
                        else f'add "{name}": {{"system": "{system}", ...}} to `connections`',
                        connection=name,
                        env=env_file.name,
                    )
                elif profile.get("system") != system:
                    self.error(
                        "E211",
                        f"connection `{name}` in {env_file.name} is a `{profile.get('system')}` "
                        f"profile, but this step is `{system}`",
                        span,
                        "use a profile of the same system",
                        connection=name,
                        env=env_file.name,
                    )

    def _first_use(self, var: str) -> Span:
        if self._uses is None:
            self._uses = _variable_uses(self.tree)
        return self._uses.get(var) or Span.point(self.file)


def _variable_uses(tree: JValue) -> dict[str, Span]:
    """Each ``${var}`` of the definition with the span of the first string that uses it: one
    walk for all of them (a walk per variable is quadratic in a definition of thousands)."""
    first: dict[str, Span] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, JObject):
            stack.extend(m.value for m in node.members)
        elif isinstance(node, JArray):
            stack.extend(node.items)
        elif isinstance(node.value, str):
            for var in ENV_VAR.findall(node.value):
                if var not in first or node.span < first[var]:
                    first[var] = node.span
    return first
