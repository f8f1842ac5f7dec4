"""spark-submit's command line as data: which options take a value, which hold lists.

Shared by the submit script's argument builder (``etlc.runtime.submit_args``, run from the
runtime zip) and ``etlc submit-spec``: the standard library only, importing neither side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# spark-submit's options that take a value (SparkSubmitOptionParser); the rest are switches.
VALUED = frozenset(
    {
        "--archives", "--class", "--conf", "-c", "--deploy-mode", "--driver-class-path",
        "--driver-cores", "--driver-java-options", "--driver-library-path", "--driver-memory",
        "--exclude-packages", "--executor-cores", "--executor-memory", "--files", "--jars",
        "--keytab", "--kill", "--master", "--name", "--num-executors", "--packages",
        "--principal", "--properties-file", "--proxy-user", "--py-files", "--queue",
        "--remote", "--repositories", "--status", "--total-executor-cores",
    }
)  # fmt: skip
LISTS = ("--jars", "--py-files", "--files", "--packages")  # comma-separated values
DEPLOY_MODE = "spark.submit.deployMode"


class SubmitError(ValueError):
    """Why nothing was submitted."""


@dataclass
class Options:
    """spark-submit options in order, as (name, value) pairs; a switch has value None."""

    pairs: list[tuple[str, str | None]] = field(default_factory=list)

    @classmethod
    def parse(cls, args: Sequence[str]) -> Options:
        pairs: list[tuple[str, str | None]] = []
        rest = list(args)
        while rest:
            arg = rest.pop(0)
            name, eq, value = arg.partition("=")
            if not arg.startswith("-"):
                raise SubmitError(
                    f"`{arg}` before `--` is not a spark-submit option: arguments for the "
                    "driver go after `--`"
                )
            if name in VALUED and arg.startswith("--") and eq:
                pairs.append((name, value))
            elif arg in VALUED:
                if not rest:
                    raise SubmitError(f"spark-submit option {arg} needs a value")
                pairs.append((arg, rest.pop(0)))
            else:
                pairs.append((arg, None))
        return cls(pairs)

    def values(self, name: str) -> list[str]:
        aliases = {"--conf", "-c"} if name == "--conf" else {name}
        return [v for n, v in self.pairs if n in aliases and v is not None]

    def listed(self, name: str) -> list[str]:
        """The items of a list option (``--jars a,b --jars c``: a, b, c), empty ones left out."""
        return [item for value in self.values(name) for item in value.split(",") if item]

    def conf(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for setting in self.values("--conf"):
            key, _, value = setting.partition("=")
            found[key] = value
        return found

    @classmethod
    def parse_command(cls, argv: Sequence[str]) -> tuple[Options, str, list[str]]:
        """spark-submit's arguments: (its options, the application, the application's)."""
        at = 0
        while at < len(argv):
            if not argv[at].startswith("-"):
                return cls.parse(argv[:at]), argv[at], list(argv[at + 1 :])
            at += 2 if argv[at] in VALUED else 1  # `--opt=value` and switches are one word
        raise SubmitError("no application in the spark-submit command")


def spec(argv: Sequence[str]) -> dict[str, Any]:
    """A spark-submit command as the fields an orchestrator's Spark job takes (Airflow's
    SparkSubmitOperator, an EMR step, a Dataproc or Databricks job): lists split on commas,
    ``--conf`` as a mapping (the last value of a key, as spark-submit keeps it), every other
    option under ``options`` (the last one given), and the whole command as ``argv``."""
    options, application, args = Options.parse_command(argv)
    conf = options.conf()
    last = {name: value for name, value in options.pairs if name not in (*LISTS, "--conf", "-c")}
    return {
        "application": application,
        "application_args": args,
        "name": last.pop("--name", None),
        "master": last.pop("--master", None),
        "deploy_mode": last.pop("--deploy-mode", None) or conf.get(DEPLOY_MODE),
        **{name[2:].replace("-", "_"): options.listed(name) for name in LISTS},
        "conf": conf,
        "options": last,
        "argv": ["spark-submit", *argv],
    }
