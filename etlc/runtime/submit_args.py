"""The arguments a compiled driver's submit script gives spark-submit and the driver.

``<pipeline>.submit.sh [SPARK-SUBMIT OPTIONS --] [DRIVER OPTIONS]``: before a ``--``, options
for spark-submit (``--master yarn --deploy-mode cluster --driver-memory 4g``); after it, or
everything when there is none, the driver's (``--env prod``). The script runs this module on
the submitting machine, from the runtime zip, with whatever Python is there: the standard
library only (an import-linter contract holds it to that). It

- finds the environment file the driver is to read (its ``--env-file``, ``--env``, else
  ``$ETLC_ENV_FILE``, ``$ETLC_ENV``, else ``local``, in the project's environment folder) and
  checks it before anything is submitted;
- passes the file's ``spark`` settings as ``--conf``, so the ones Spark reads only at launch
  (driver memory, executor sizing, a YARN queue, a Kubernetes image) take effect. Keys named
  like a secret stay off the command line, which any user of the machine can list; the
  driver's session builder still sets them;
- in cluster deploy mode, where the driver starts in a container without the project, ships
  the file with ``--files`` and gives the driver its name in the working directory, where
  YARN and Kubernetes put shipped files; in client mode the driver gets its absolute path.
  On YARN it sets ``spark.yarn.maxAppAttempts=1`` unless told otherwise: etlc retries;
- joins the script's own ``--jars``, ``--py-files``, ``--files`` and ``--packages`` with the
  user's, since spark-submit keeps only the last of each; the user's other options come after
  the script's, so they win (spark-submit: the last one counts).

Prints how many spark-submit options follow, those options, then the driver's arguments,
each ended by NUL (the script takes them apart without a loop over them).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from etlc.runtime.environment_file import EnvironmentFileError, spark_settings
from etlc.spark_submit import DEPLOY_MODE, LISTS, Options, SubmitError

# What Spark's UI hides (spark.redaction.regex) is kept off the command line too: the script
# passes etlc's regex among its --conf; Spark's default if it does not.
REDACTION = "spark.redaction.regex"
# What Spark hides is etlc's to decide: an environment file (from a pull request, say) may add
# to these patterns, never take from them.
WIDEN_ONLY = (REDACTION, "spark.sql.redaction.options.regex")
SPARK_DEFAULT_REDACTION = "(?i)secret|password|token|access[.]?key"
UPLOAD_PATH = "spark.kubernetes.file.upload.path"
# YARN starts a failed cluster-mode driver again (its default: twice in all), and each start
# would run etlc's own retries (at most 3, 5 s apart) anew. One start, unless the
# environment file or the command line says otherwise.
MAX_APP_ATTEMPTS = "spark.yarn.maxAppAttempts"
# A Kubernetes secret's name (and key) for a pod's environment or files: not a secret itself,
# and read only when the pod is made, so it must be on the command line.
SECRET_REFERENCE = re.compile(r"spark\.kubernetes\.(driver|executor)\.(secretKeyRef|secrets)\.")


@dataclass(frozen=True)
class DriverArgs:
    """The driver's arguments with its environment file taken out (the rest kept as given)."""

    env: str | None
    env_file: str | None
    rest: tuple[str, ...]
    help: bool

    @classmethod
    def parse(cls, args: Sequence[str]) -> DriverArgs:
        env = env_file = None
        rest: list[str] = []
        todo = list(args)
        while todo:
            arg = todo.pop(0)
            name, eq, value = arg.partition("=")
            if name in ("--env", "--env-file") and arg.startswith("--"):
                if not eq:
                    if not todo:
                        raise SubmitError(f"driver option {arg} needs a value")
                    value = todo.pop(0)
                if name == "--env":
                    env = value
                else:
                    env_file = value
            else:
                rest.append(arg)
        return cls(env, env_file, tuple(rest), help=bool({"-h", "--help"} & set(rest)))

    def environment_file(self, env_dir: str, environ: Mapping[str, str]) -> Path:
        chosen = self.env_file
        if chosen is None and self.env is None:
            chosen = environ.get("ETLC_ENV_FILE") or None
        if chosen is None:
            name = self.env or environ.get("ETLC_ENV") or "local"
            return Path(env_dir, f"{name}.json").absolute()
        return Path(chosen).absolute()


def split(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(spark-submit options, driver arguments): at the first ``--``, if there is one."""
    if "--" not in args:
        return [], list(args)
    at = list(args).index("--")
    return list(args[:at]), list(args[at + 1 :])


def deploy_mode(user: Options, conf: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """What spark-submit will use: --deploy-mode, else $DEPLOY_MODE, else the conf."""
    chosen = user.values("--deploy-mode")
    if chosen:
        return chosen[-1]
    if environ.get("DEPLOY_MODE"):
        return environ["DEPLOY_MODE"]
    return conf.get(DEPLOY_MODE, "client")


def master(user: Options, environ: Mapping[str, str]) -> str:
    """The script passes ``--master ${SPARK_MASTER:-local[2]}`` first; a user's comes later."""
    chosen = user.values("--master")
    return chosen[-1] if chosen else environ.get("SPARK_MASTER") or "local[2]"


def check_kubernetes(conf: Mapping[str, str]) -> None:
    """A Kubernetes driver pod sees none of the submitting machine's files: spark-submit
    uploads them (jars, the runtime zip, the environment file, the driver) to this path."""
    if UPLOAD_PATH not in conf:
        raise SubmitError(
            "a Kubernetes cluster-mode driver cannot read this machine's files: set "
            f"{UPLOAD_PATH} (an s3a:// or other path the pods can read) in the environment "
            "file's `spark` settings or as --conf, and spark-submit uploads them there"
        )


def arguments(
    ours: Options, env_dir: str, args: Sequence[str], environ: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """(spark-submit options, driver arguments) for the script's ``ours`` and its ``args``."""
    before, after = split(args)
    user, driver = Options.parse(before), DriverArgs.parse(after)
    if driver.help:  # the driver prints its usage; no environment is read
        return _joined(ours, user), list(after)
    env_file = driver.environment_file(env_dir, environ)
    try:
        env_conf = spark_settings(env_file)
    except EnvironmentFileError as exc:
        raise SubmitError(str(exc)) from None
    own = ours.conf()
    secret = re.compile(own.get(REDACTION, SPARK_DEFAULT_REDACTION))
    env_conf = {k: widened(k, v, own) for k, v in env_conf.items()}
    shipped: list[tuple[str, str | None]] = [
        ("--conf", f"{key}={value}")
        for key, value in sorted(env_conf.items())
        if SECRET_REFERENCE.match(key) or not secret.search(key)
    ]
    # The settings spark-submit ends with: the user's --conf come after the file's.
    conf = {**env_conf, **user.conf()}
    if deploy_mode(user, conf, environ) == "cluster":
        cluster = master(user, environ)
        if cluster.startswith("k8s://"):
            check_kubernetes(conf)
        if cluster == "yarn" and MAX_APP_ATTEMPTS not in conf:
            shipped.append(("--conf", f"{MAX_APP_ATTEMPTS}=1"))
        shipped.append(("--files", str(env_file)))
        where = env_file.name
    else:
        where = str(env_file)
    options = _joined(Options([*ours.pairs, *shipped]), user)
    return options, ["--env-file", where, *driver.rest]


def widened(key: str, value: str, own: Mapping[str, str]) -> str:
    """An environment file's redaction pattern, as an alternative to etlc's own."""
    if key in WIDEN_ONLY and own.get(key):
        return f"{own[key]}|{value}" if value else own[key]
    return value


def _joined(ours: Options, user: Options) -> list[str]:
    """Ours first, then the user's; each list option once, its values joined in that order."""
    out: list[str] = []
    for name in LISTS:
        if values := [*ours.listed(name), *user.listed(name)]:
            out += [name, ",".join(values)]
    for name, value in (*ours.pairs, *user.pairs):
        if name in LISTS:
            continue
        out += [name] if value is None else [name, value]
    return out


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """``--env-dir DIR [the script's spark-submit options] --- [the script's arguments]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] != ["--env-dir"] or "---" not in argv:
            raise SubmitError("usage: submit_args --env-dir DIR [OPTIONS] --- [ARGS]")
        at = argv.index("---")
        ours = Options.parse(argv[2:at])
        options, driver = arguments(ours, argv[1], argv[at + 1 :], environ)
    except SubmitError as exc:
        print(f"etlc: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{a}\0" for a in (str(len(options)), *options, *driver)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
