"""Scenario 5, the compiler: `etlc lint` and `etlc compile` of 100 definitions, as a user runs
them (each command a fresh interpreter). The definitions are the examples of pipelines/,
renamed until there are 100, checked against the examples' own environment file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def definitions(work: Path, count: int) -> list[Path]:
    examples = sorted((ROOT / "pipelines").glob("*.json"))
    defs = work / "defs"
    (defs / "env").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "pipelines" / "env" / "local.json", defs / "env" / "local.json")
    paths = []
    for i in range(count):
        doc = json.loads(examples[i % len(examples)].read_text(encoding="utf-8"))
        doc["name"] = f"{doc['name']}_{i:03d}"
        doc.pop("$schema", None)
        path = defs / f"{doc['name']}.json"
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        paths.append(path)
    return paths


def _timed(args: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return time.monotonic() - started


def run(count: int, work: Path) -> dict[str, Any]:
    paths = [str(p) for p in definitions(work, count)]
    lint = _timed([str(BIN / "etlc"), "lint", *paths])
    compile_ = _timed([str(BIN / "etlc"), "compile", *paths, "--out", str(work / "generated")])
    return {
        "scenario": "compiler",
        "definitions": count,
        "lint_s": round(lint, 2),
        "compile_s": round(compile_, 2),
        "lint_plus_compile_s": round(lint + compile_, 2),
        "target_s": 2.0,
    }
