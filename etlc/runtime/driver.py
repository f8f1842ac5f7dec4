"""The entry point of every generated driver: arguments, environment, session, run, exit code."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import pyspark
from pyspark.sql import SparkSession

from etlc.runtime import jvm_config
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, EtlcError, classify
from etlc.runtime.graph import PipelineGraph
from etlc.runtime.lineage_sender import check_url
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.openlineage import RunLineage
from etlc.runtime.pipeline import BatchPipeline, Pipeline
from etlc.runtime.progress import duration_ms
from etlc.runtime.report import EXIT_FAILED, RunReport, Status
from etlc.runtime.retry import RetryingPipeline, RetryPolicy
from etlc.runtime.run_files import AppendHandler, RunFiles, check_run_id
from etlc.runtime.session import create_session, tag_attempt
from etlc.runtime.state_command import reset_state, show_state
from etlc.runtime.streaming import StopSignal, StreamingPipeline
from etlc.spark_targets import DEFAULT_LINE, TARGETS, line_of
from etlc.vault.redaction import install_excepthook
from etlc.vault.reference import is_reference

Build = Callable[[Environment], PipelineGraph]
# What a test entry may do to the graph before it runs (inject faults); drivers pass none.
Wrap = Callable[[PipelineGraph], PipelineGraph]
SessionFactory = Callable[[str, Environment, RunContext], SparkSession]
# How the driver reads its environment file: through etlc's Scala configuration classes, on
# the JVM spark-submit started; tests of other things may read it in Python alone.
EnvironmentLoader = Callable[[Path, Settings], Environment]

# Where environment files are, relative to the folder the driver runs in (the project's root).
# A project whose etlc.toml names another folder has it compiled into its drivers.
ENV_DIR = "pipelines/env"
LOG_FORMATS = ("auto", "json", "text")


class AttemptTagged(Pipeline):
    """Tags the Spark jobs of each attempt with its number (for the JVM stage metrics
    listener's lines), right before the attempt runs: it sits inside the retry wrapper."""

    def __init__(self, inner: Pipeline, spark: SparkSession, context: RunContext) -> None:
        self.inner = inner
        self.spark = spark
        self.context = context

    def run(self) -> RunReport:
        tag_attempt(self.spark, self.context)
        return self.inner.run()


class _Parser(argparse.ArgumentParser):
    """Wrong arguments fail the run (exit 1): argparse's own 2 means records failed validation
    to whatever runs the driver."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}\n")


def parse_args(
    pipeline: str, argv: Sequence[str] | None, env_dir: str = ENV_DIR, mode: str = "batch"
) -> argparse.Namespace:
    parser = _Parser(
        prog=f"{pipeline}.py",
        description=f"Run the etlc pipeline `{pipeline}` (submit it with spark-submit).",
        epilog="Exit codes: 0 success (a stream: stopped by SIGTERM/SIGINT), 1 failed, "
        "2 records failed validation, 3 partial.",
    )
    parser.add_argument(
        "--env",
        default=os.environ.get("ETLC_ENV", "local"),
        help=f"environment name: reads {env_dir}/<env>.json (default: $ETLC_ENV or local)",
    )
    parser.add_argument(
        "--env-file",
        default=os.environ.get("ETLC_ENV_FILE"),
        help="explicit environment file path (overrides --env)",
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="run id for the logs and the run's files: letters, digits and _ . + = - "
        "(default: random)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("ETLC_LOG_FORMAT") or "auto",
        help="what stdout shows: json lines for a machine, text for a person; auto (the "
        "default, or $ETLC_LOG_FORMAT) is text at a terminal. The run's file "
        "(<runs_dir>/<pipeline>/<run id>.jsonl) always has the JSON lines",
    )
    _incremental_options(parser)
    args = parser.parse_args(argv)
    if any(a is not None for a in (args.extract, args.to, args.load)) and args.state != "reset":
        parser.error("--extract, --load and --to go with --state reset")
    if args.full_refresh and (args.state is not None or mode == "streaming"):
        parser.error("--full-refresh is for a batch run (a stream resumes from its checkpoint)")
    if args.log_format not in LOG_FORMATS:  # from $ETLC_LOG_FORMAT, which argparse takes as is
        parser.error(f"ETLC_LOG_FORMAT={args.log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    return args


def _incremental_options(parser: argparse.ArgumentParser) -> None:
    """The options of incremental extracts: a full refresh, and the operator's ``--state``."""
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="batch: read every row of each incremental extract once, whatever position its "
        "loads committed, and rebuild each load it feeds (overwrite, where the sink can); "
        "the positions reached are committed as after any run",
    )
    state = parser.add_argument_group(
        "incremental extracts",
        "the positions a run reads above, kept with each load (`etlc state` runs these)",
    )
    state.add_argument(
        "--state",
        choices=("show", "reset"),
        help="show: print each load's position of each incremental extract; reset: change "
        "them (--extract, --to); then exit without running the pipeline",
    )
    state.add_argument(
        "--extract",
        help="with --state reset: the incremental extract whose position changes (default: "
        "every one)",
    )
    state.add_argument(
        "--load",
        help="with --state reset: the one load whose position changes (default: every load "
        "the extract feeds)",
    )
    state.add_argument(
        "--to",
        help="with --state reset: the new position (a timestamp in ISO 8601, UTC unless it "
        "has an offset; a date; an integer); without it the next run reads every row",
    )


def text_console(log_format: str) -> bool:
    if log_format == "auto":
        return sys.stdout.isatty()
    return log_format == "text"


def _reset_after(env: Environment, mode: str) -> int | None:
    if mode != "streaming":
        return None
    where = f"{env.path}: `etlc.retry_reset_after`"
    try:
        ms = duration_ms(env.settings.retry_reset_after)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if ms <= 0:
        raise ConfigurationError(f"{where} must be longer than 0")
    return ms


def _project_settings(stage_dir: str | None, checkpoint_dir: str | None) -> Settings:
    """The settings an environment file leaves out: the project's folders where it has them."""
    defaults = Settings()
    if stage_dir is not None:
        defaults = replace(defaults, stage_dir=stage_dir)
    if checkpoint_dir is not None:
        defaults = replace(defaults, checkpoint_dir=checkpoint_dir)
    return defaults


def run_driver(
    build: Build,
    *,
    pipeline: str,
    mode: str,
    max_retries: int,
    delay_seconds: float,
    env_dir: str = ENV_DIR,
    stage_dir: str | None = None,
    checkpoint_dir: str | None = None,
    argv: Sequence[str] | None = None,
    session_factory: SessionFactory = create_session,
    wrap: Wrap | None = None,
    load_environment: EnvironmentLoader = jvm_config.load_environment,
    definition: Mapping[str, Any] | None = None,
    definition_file: str = "",
    spark_line: str = DEFAULT_LINE,
    running: str | None = None,
) -> int:
    """Run one pipeline; ``env_dir``, ``stage_dir`` and ``checkpoint_dir`` are the project's
    folders (its etlc.toml). ``definition`` (from ``definition_file``) is read by etlc's Scala
    configuration classes before the session; ``spark_line`` must be the running Spark's."""
    args = parse_args(pipeline, argv, env_dir, mode)
    context, log = _event_log(pipeline, args.log_format)
    env_path = Path(args.env_file or f"{env_dir}/{args.env}.json")
    started = time.time()
    files: RunFiles | None = None
    try:
        if args.run_id:
            context.run_id = check_run_id(args.run_id)
        check_spark_line(spark_line, running)
        env = load_environment(env_path, _project_settings(stage_dir, checkpoint_dir))
        files = _run_files(env, context, log)
        if definition is not None:
            jvm_config.check_definition(definition, definition_file or pipeline)
        policy = RetryPolicy(max_retries, delay_seconds, _reset_after(env, mode))
        _check_lineage_settings(env)
        # The pid lets an operator (or a test) signal this driver itself, not spark-submit.
        log.info("run_started", mode=mode, env=env.name, env_file=str(env_path), pid=os.getpid())
        # Steps parse their schemas through Spark, so the session comes first.
        spark = session_factory(f"etlc:{pipeline}", env, context)
        graph = build(env) if wrap is None else wrap(build(env))
        if args.state is not None:
            done = _state(args, graph, spark, env, log)
            return _finished(log, done, files, started, mode=f"state {args.state}", env=env.name)
        lineage = _lineage(graph, spark, env, log, mode)
    except Exception as exc:  # configuration problems end the run before Spark starts
        error = exc if isinstance(exc, EtlcError) else classify(exc, None)
        report = RunReport(pipeline, context.run_id, Status.FAILED, error=error)
        report.duration_ms = int((time.time() - started) * 1000)
        return _finished(log, report, files, started, mode=mode, env_file=str(env_path))
    if lineage is not None:
        lineage.start()
    tick = lineage.running if lineage is not None else None
    pipeline_run = _pipeline(mode, graph, spark, env, log, tick=tick, full=args.full_refresh)
    tagged = AttemptTagged(pipeline_run, spark, context)
    report = RetryingPipeline(tagged, policy, log).run()
    if lineage is not None:
        lineage.finished(report)
    return _finished(log, report, files, started, mode=mode, env=env.name, env_file=str(env_path))


def check_spark_line(compiled: str, running: str | None = None) -> None:
    """ConfigurationError unless the Spark running this driver is of the line it was compiled
    for: its jars are built for that line's Spark and Scala, and another's fails later, in a
    class-loading error far from the cause. Checked before any JVM starts."""
    running = running or pyspark.__version__
    if line_of(running) == compiled:
        return
    fix = (
        f"compile it for that line, `etlc compile --spark-version {line_of(running)}` (or "
        "`spark_version` in etlc.toml)"
        if line_of(running) in TARGETS
        else f"etlc compiles for Spark {', '.join(TARGETS)}"
    )
    raise ConfigurationError(
        f"this driver was compiled for Spark {compiled} (its jars and etlc's JVM module are "
        f"built for it), but runs on Spark {running}: {fix}"
    )


def _event_log(pipeline: str, log_format: str) -> tuple[RunContext, EventLog]:
    """The run's context and its log, lines formatted for stdout as asked; no traceback of an
    uncaught error reaches the console with a secret in it."""
    text = text_console(log_format)
    configure(text=text)
    install_excepthook()
    context = RunContext(pipeline, stdout_json=not text)
    return context, EventLog(context)


def _state(
    args: argparse.Namespace,
    graph: PipelineGraph,
    spark: SparkSession,
    env: Environment,
    log: EventLog,
) -> RunReport:
    """``--state``: the positions shown or reset, in place of a run."""
    if args.state == "show":
        show_state(graph, spark, env, log)
    else:
        reset_state(graph, spark, env, log, extract=args.extract, to=args.to, load=args.load)
    return RunReport(graph.name, log.context.run_id, Status.SUCCESS)


def _pipeline(
    mode: str,
    graph: PipelineGraph,
    spark: SparkSession,
    env: Environment,
    log: EventLog,
    *,
    tick: Callable[[], None] | None = None,
    full: bool = False,
) -> Pipeline:
    if mode != "streaming":
        return BatchPipeline(graph, spark, env, log, full_refresh=full)
    stop = StopSignal()
    # SIGTERM (what a scheduler or `kill` sends) stops after the running micro-batch.
    signal.signal(signal.SIGTERM, lambda *_: stop.request())
    signal.signal(signal.SIGINT, lambda *_: stop.request())
    return StreamingPipeline(graph, spark, env, log, stop, tick=tick)


def _check_lineage_settings(env: Environment) -> None:
    """Lineage settings that are wrong fail the run before Spark starts."""
    where = f"{env.path}: `etlc.openlineage_interval`"
    try:
        interval = duration_ms(env.settings.openlineage_interval)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if interval < 1000:
        raise ConfigurationError(f"{where} must be at least 1 second")
    check_url(env.settings.openlineage_url, f"{env.path}: `etlc.openlineage_url`")
    key = env.settings.openlineage_api_key
    if key and not is_reference(key):
        raise ConfigurationError(
            f"{env.path}: `etlc.openlineage_api_key` must be a vault reference "
            "(vault://<path>#<key>), never the key itself"
        )


def _lineage(
    graph: PipelineGraph, spark: SparkSession, env: Environment, log: EventLog, mode: str
) -> RunLineage | None:
    """The run's lineage events: a dataset that cannot be named costs the events, never the
    run."""
    try:
        return RunLineage(graph, spark, env, log, mode=mode)
    except Exception as exc:
        log.warning("openlineage_unavailable", error=str(exc))
        return None


def _run_files(env: Environment, context: RunContext, log: EventLog) -> RunFiles | None:
    """The run's files, their lines file receiving every line from now on. A folder that
    cannot be written costs the files, never the run: the console has the same lines."""
    try:
        files = RunFiles.open(env.settings.runs_dir, env.path, context)
    except OSError as exc:
        log.warning(
            "run_files_unavailable", runs_dir=env.settings.runs_dir, error=str(exc.strerror)
        )
        return None
    log.logger.addHandler(AppendHandler(files.lines))
    context.run_file = str(files.lines)
    return files


def _finished(
    log: EventLog, report: RunReport, files: RunFiles | None, started: float, **run: Any
) -> int:
    """``run_finished``, the results file, and the exit code."""
    emit = log.info if report.exit_code == 0 else log.error
    emit("run_finished", **report.as_log())
    if files is not None:
        try:
            files.write_results(report, started, **run)
        except OSError as exc:
            log.warning("run_results_unavailable", path=str(files.results), error=exc.strerror)
    sys.stdout.flush()
    return report.exit_code
