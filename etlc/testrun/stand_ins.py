"""What a pipeline under test runs with instead of its sources, targets and environment.

A test reads no source and writes no target: each extract reads the rows the test gives it
(through the files connector, so they are parsed and validated as real input is), and each
dataset a test looks at is captured to a Parquet folder of the runner's own. The driver's
``build`` still needs an environment: :class:`UnopenedEnvironment` answers every variable with
a placeholder and every connection with a profile that was never opened, so no vault, server
or environment file is touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pyspark.sql import DataFrame

from etlc.profiles import Profile
from etlc.runtime.environment import Environment
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.strategies import Loader, LoadResult
from etlc.vault import Secret

P = TypeVar("P", bound=Profile)


class Placeholders(Mapping[str, str]):
    """Every variable is defined: its value is its own name, as a folder or bucket name may
    be written (``data_dir`` reads ``data-dir``). Nothing reads the paths it makes."""

    def __getitem__(self, name: str) -> str:
        return name.lower().replace("_", "-")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True)
class UnopenedEnvironment(Environment):
    """An environment with no file, no vault and no connection."""

    def connection(self, name: str, kind: type[P]) -> P:
        # A profile of the right type holding only its name: the step's connector is made
        # (it checks its system), and replaced before anything would read the rest.
        profile = object.__new__(kind)
        object.__setattr__(profile, "name", name)
        return profile

    def secret(self, name_or_ref: str) -> Secret:
        raise ConfigurationError(f"`etlc test` resolves no secret (`{name_or_ref}`)")


class CapturingLoader(Loader):
    """Writes a dataset to a Parquet folder for the comparison: the one job that computes it
    (and observes its counts), as a load would."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        df.write.mode("overwrite").parquet(self.path)
        return LoadResult()
