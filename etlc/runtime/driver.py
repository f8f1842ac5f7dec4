"""The entry point of every generated driver: arguments, environment, session, run, exit code."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from etlc.runtime import jvm_config
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, EtlcError, classify
from etlc.runtime.graph import PipelineGraph
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.pipeline import BatchPipeline, Pipeline
from etlc.runtime.progress import duration_ms
from etlc.runtime.report import EXIT_FAILED, RunReport
from etlc.runtime.retry import RetryingPipeline, RetryPolicy
from etlc.runtime.session import create_session, tag_attempt
from etlc.runtime.streaming import StopSignal, StreamingPipeline
from etlc.vault.redaction import install_excepthook

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


def parse_args(
    pipeline: str, argv: Sequence[str] | None, env_dir: str = ENV_DIR
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
    parser.add_argument("--run-id", default=None, help="run id for the logs (default: random)")
    return parser.parse_args(argv)


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
) -> int:
    """Run one pipeline; ``env_dir``, ``stage_dir`` and ``checkpoint_dir`` are the project's
    folders (its etlc.toml), the last two defaults an environment file may override.
    ``definition`` is the document the driver was compiled from (``definition_file``), read
    by etlc's Scala configuration classes after the environment file and before the session."""
    args = parse_args(pipeline, argv, env_dir)
    configure()
    install_excepthook()
    context = RunContext(pipeline)
    if args.run_id:
        context.run_id = args.run_id
    log = EventLog(context)
    env_path = Path(args.env_file or f"{env_dir}/{args.env}.json")
    try:
        env = load_environment(env_path, _project_settings(stage_dir, checkpoint_dir))
        if definition is not None:
            jvm_config.check_definition(definition, definition_file or pipeline)
        policy = RetryPolicy(max_retries, delay_seconds, _reset_after(env, mode))
        # The pid lets an operator (or a test) signal this driver itself, not spark-submit.
        log.info("run_started", mode=mode, env=env.name, env_file=str(env_path), pid=os.getpid())
        # Steps parse their schemas through Spark, so the session comes first.
        spark = session_factory(f"etlc:{pipeline}", env, context)
        graph = build(env) if wrap is None else wrap(build(env))
    except Exception as exc:  # configuration problems end the run before Spark starts
        error = exc if isinstance(exc, EtlcError) else classify(exc, None)
        log.error("run_finished", status="FAILED", error=str(error), error_kind=error.kind)
        return EXIT_FAILED
    inner: Pipeline
    if mode == "streaming":
        stop = StopSignal()
        # SIGTERM (what a scheduler or `kill` sends) stops after the running micro-batch.
        signal.signal(signal.SIGTERM, lambda *_: stop.request())
        signal.signal(signal.SIGINT, lambda *_: stop.request())
        inner = StreamingPipeline(graph, spark, env, log, stop)
    else:
        inner = BatchPipeline(graph, spark, env, log)
    tagged = AttemptTagged(inner, spark, context)
    runner = RetryingPipeline(tagged, policy, log)
    report = runner.run()
    emit = log.info if report.exit_code == 0 else log.error
    emit("run_finished", **report.as_log())
    sys.stdout.flush()
    return report.exit_code
