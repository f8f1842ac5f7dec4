"""Scenario: the compiler on hostile inputs as large as it accepts.

`etlc lint` runs in CI on definitions from pull requests, so its cost must be bounded for any
input up to the size limit: each input here is built to be as expensive as an attacker can
make it within that limit (many steps, deep nesting, long expressions, alias bombs, huge enums,
regexes that backtrack, one very long line full of mistakes). Each command runs in a fresh
interpreter, as a user runs it; its wall time and peak resident memory (from ``wait4``) are
recorded. The bound is 10 s and 500 MB per command.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

LIMIT = 1024 * 1024  # the size limit of every file the compiler reads (etlc.dsl.project_files)
BOUND_S = 10.0
BOUND_MB = 500.0
ETLC = [sys.executable, "-c", "from etlc.cli import app; app()"]

_EXTRACT = {
    "id": "src",
    "type": "files",
    "path": "in/*.csv",
    "format": "csv",
    "schema": "row.avsc",
}
_ROW = {
    "type": "record",
    "name": "Row",
    "fields": [{"name": "a", "type": "long"}, {"name": "s", "type": "string"}],
}


def _definition(name: str, transform: list[Any], last: str = "src", **extra: Any) -> str:
    doc = {
        "name": name,
        "extract": [_EXTRACT],
        "transform": transform,
        "load": [
            {"input": last, "type": "files", "path": "out", "format": "parquet", "mode": "append"}
        ],
        **extra,
    }
    return json.dumps(doc)


def _fill(make: Callable[[int], str], limit: int = LIMIT - 1024) -> str:
    """The largest ``make(n)`` (n found by doubling, then bisection) that fits in ``limit``."""
    low, high = 1, 2
    while len(make(high).encode()) <= limit:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if len(make(mid).encode()) <= limit else (low, mid)
    return make(low)


def _many_steps(n: int) -> str:
    steps = [
        {"id": f"s{i}", "type": "filter", "input": f"s{i - 1}" if i else "src", "condition": "a>1"}
        for i in range(n)
    ]
    return _definition("many_steps", steps, last=f"s{n - 1}")


def _filter(condition: str) -> str:
    return _definition(
        "long_expression",
        [{"id": "f", "type": "filter", "input": "src", "condition": condition}],
        last="f",
    )


def _many_unknown_keys(n: int) -> str:
    step: dict[str, Any] = {"id": "f", "type": "filter", "input": "src", "condition": "a > 1"}
    step.update({f"conditon{i}": i for i in range(n)})
    return _definition("many_unknown_keys", [step], last="f")


def _many_variables(n: int) -> str:
    # One line: every E207 diagnostic would quote the whole of it.
    extract = dict(_EXTRACT, path="".join(f"${{v{i}}}" for i in range(n)))
    doc = json.loads(_definition("many_variables", []))
    doc["extract"] = [extract]
    return json.dumps(doc)


def _many_columns_missing(n: int) -> str:
    return _definition(
        "missing_columns",
        [{"id": "f", "type": "select", "input": "src", "columns": [f"c{i}" for i in range(n)]}],
        last="f",
    )


def _yaml_alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 12):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "name: bomb\n" + "\n".join(lines) + "\n"


def _huge_enum(n: int) -> str:
    symbols = [f"S{i}" for i in range(n)]
    field = {"name": "e", "type": {"type": "enum", "name": "E", "symbols": symbols}}
    return json.dumps(dict(_ROW, fields=[*_ROW["fields"], field]))


def _many_extracts(n: int) -> str:
    doc = json.loads(_definition("many_extracts", []))
    doc["extract"] = [dict(_EXTRACT, id=f"e{i}") for i in range(n)]
    doc["load"] = [dict(doc["load"][0], input="e0")]
    return json.dumps(doc)


def _many_wide_extracts(n: int) -> str:
    extracts = [dict(_EXTRACT, id=f"e{i}", schema="wide.avsc") for i in range(n)]
    doc = json.loads(_definition("many_wide_extracts", []))
    doc["extract"] = extracts
    doc["load"] = [dict(doc["load"][0], input=f"e{i}") for i in range(n)]
    return json.dumps(doc)


def inputs(work: Path) -> dict[str, Path]:
    """Every hostile input, written as a project under ``work``: name -> definition file."""
    pipelines = work / "pipelines"
    avro = work / "schemas" / "avro"
    jvm = work / "schemas" / "jvm"
    for folder in (pipelines, avro, jvm):
        folder.mkdir(parents=True, exist_ok=True)
    (avro / "row.avsc").write_text(json.dumps(_ROW), encoding="utf-8")
    # Defines none of the variables a definition uses: each use is one more diagnostic.
    (pipelines / "env").mkdir(exist_ok=True)
    (pipelines / "env" / "local.json").write_text('{"variables": {}}', encoding="utf-8")
    (avro / "enum.avsc").write_text(_fill(_huge_enum), encoding="utf-8")
    wide = [{"name": f"c{i}", "type": "long"} for i in range(4000)]
    (avro / "wide.avsc").write_text(json.dumps(dict(_ROW, fields=wide)), encoding="utf-8")
    bomb_schema = {
        "type": "object",
        "properties": {"key": {"type": "string", "pattern": "^(a+)+$"}},
    }
    (jvm / "com.example.Bomb.json").write_text(json.dumps(bomb_schema), encoding="utf-8")
    texts: dict[str, tuple[str, str]] = {
        # The most filter steps a definition may hold (2,000 expressions), all accepted.
        "many_steps": ("json", _many_steps(1_995)),
        # As many values as a definition may hold (20,000), in extracts: no expressions.
        "many_extracts": ("json", _many_extracts(3_300)),
        "deep_json": ("json", _fill(lambda n: "[" * n + "]" * n)),
        "deep_yaml": ("yaml", _fill(lambda n: "[" * n + "]" * n)),
        "yaml_alias_bomb": ("yaml", _yaml_alias_bomb()),
        "long_sum": ("json", _fill(lambda n: _filter(" + ".join(["a"] * n) + " > 0"))),
        "nested_parens": ("json", _fill(lambda n: _filter("(" * n + "a > 0" + ")" * n))),
        "nested_calls": ("json", _fill(lambda n: _filter("abs(" * n + "a" + ")" * n + " > 0"))),
        "long_string_literal": ("json", _fill(lambda n: _filter("s = '" + "x" * n + "'"))),
        "many_unknown_keys": ("json", _fill(_many_unknown_keys)),
        "many_variables_one_line": ("json", _fill(_many_variables)),
        "many_missing_columns": ("json", _fill(_many_columns_missing)),
        # As many 4,000-column datasets as the plan's 200,000 columns allow, and then some.
        "wide_extracts_accepted": ("json", _many_wide_extracts(24)),
        "wide_extracts_refused": ("json", _fill(_many_wide_extracts)),
        "huge_enum": (
            "json",
            _definition("huge_enum", [], extract=[dict(_EXTRACT, schema="enum.avsc")]),
        ),
        "regex_backtracking": (
            "json",
            _definition(
                "regex_bomb",
                [
                    {
                        "id": "j",
                        "type": "jvm",
                        "input": "src",
                        "class": "com.example.Bomb",
                        "options": {"key": "a" * 40 + "!"},
                    }
                ],
                last="j",
            ),
        ),
    }
    found: dict[str, Path] = {}
    for name, (fmt, text) in texts.items():
        path = pipelines / f"{name}.{fmt}"
        path.write_text(text, encoding="utf-8")
        found[name] = path
    return found


def _high_water_kb(pid: int) -> int:
    """The process's peak resident set so far (``VmHWM``, kB), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def measure(args: list[str], cwd: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Wall time, peak RSS and exit code of one command; killed after ``timeout`` seconds.

    Output is drained by a thread (a command that prints gigabytes must not block on a full
    pipe, nor fill this process's memory); the first MiB is kept.
    """
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    stream = cast(io.BufferedReader, proc.stdout)  # bufsize=-1: a BufferedReader
    output = bytearray()

    def drain() -> None:
        while chunk := stream.read1(1 << 16):
            if len(output) < (1 << 20):
                output.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    killed = False
    peak_kb = 0
    while True:
        peak_kb = max(peak_kb, _high_water_kb(proc.pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout and not killed:
            proc.kill()
            killed = True
        time.sleep(0.02)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=5)
    text = output.decode("utf-8", "replace")
    return {
        "seconds": round(seconds, 2),
        # ru_maxrss of a child counts the memory of the process it was forked from (Linux
        # keeps the pre-exec high-water mark), so a big test process would be charged to the
        # command; the command's own high-water mark (VmHWM) is read while it runs instead.
        "peak_rss_mb": round((peak_kb or usage.ru_maxrss) / 1024, 1),
        "exit": proc.returncode,
        "killed": killed,
        "traceback": "Traceback" in text or "E000" in text,
        "tail": text[-300:],
    }


def run(work: Path, parallel: int = 1) -> dict[str, Any]:
    """Lint and compile of every input, ``parallel`` commands at a time. Commands sharing the
    machine can only take longer, so a time bound met in parallel is met alone; each one's
    peak memory is its own process's."""
    work.mkdir(parents=True, exist_ok=True)
    found = inputs(work)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {
            name: (
                pool.submit(measure, [*ETLC, "lint", str(path)], work),
                # Each into its own folder: compiles running together share no runtime zip.
                pool.submit(
                    measure,
                    [*ETLC, "compile", str(path), "--out", str(work / "generated" / name)],
                    work,
                ),
            )
            for name, path in found.items()
        }
        rows: list[dict[str, Any]] = [
            {
                "input": name,
                "bytes": found[name].stat().st_size,
                "lint": lint.result(),
                "compile": compile_.result(),
            }
            for name, (lint, compile_) in futures.items()
        ]
    worst_s = max(max(r["lint"]["seconds"], r["compile"]["seconds"]) for r in rows)
    worst_mb = max(max(r["lint"]["peak_rss_mb"], r["compile"]["peak_rss_mb"]) for r in rows)
    return {
        "scenario": "hostile_inputs",
        "inputs": rows,
        "worst_seconds": worst_s,
        "worst_peak_rss_mb": worst_mb,
        "bound_seconds": BOUND_S,
        "bound_peak_rss_mb": BOUND_MB,
    }


if __name__ == "__main__":  # python -m bench.hostile <work dir>: the table, without a report
    import tempfile

    result = run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
    for row in result["inputs"]:
        print(
            f"{row['input']:<26} {row['bytes']:>8} B  "
            + "  ".join(
                f"{cmd} {row[cmd]['seconds']:>6.2f} s {row[cmd]['peak_rss_mb']:>7.1f} MB "
                f"exit {row[cmd]['exit']}{' KILLED' if row[cmd]['killed'] else ''}"
                f"{' TRACEBACK' if row[cmd]['traceback'] else ''}"
                for cmd in ("lint", "compile")
            )
        )
