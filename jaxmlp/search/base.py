"""What a search is to the rest of the tool: a `Search` checks a study before anything
trains, runs it, and ends with an `Outcome`, which knows its best configuration, the
records it trained, and its own part of the report.

A new search is one module with a subclass of each, and one line in registry.py.
"""

import abc
from pathlib import Path
from typing import NamedTuple

import ml_collections

from jaxmlp.core import train
from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import runner
from jaxmlp.report import records as records_lib
from jaxmlp.studies import study as study_lib


class Outcome(abc.ABC):
  """A finished search, as the final retraining and the report see it."""

  best: study_lib.Member                 # the best configuration (seed 0's member)
  records: list[records_lib.MemberRecord]  # every member it trained (or found trained)

  @abc.abstractmethod
  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    """The report's 'What ran' lines: the search, and what it cost."""

  @abc.abstractmethod
  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    """The report's lines for the search (before the final model's, where
    `retrained`); it may write figures and tables beside the report."""

  def report_appendix(self, config: ml_collections.ConfigDict, study_dir: Path
                      ) -> list[str]:
    """Lines after the final model's (the grid's page per configuration)."""
    del config, study_dir
    return []

  def write_summary(self, study_dir: Path) -> str | None:
    """Files summing up the records, and what the command prints of them (or None)."""
    del study_dir
    return None


class Demand(NamedTuple):
  """Programs of `slots` members (0: one a device) of any of `structures`; `flag` is
  the setting that asks for that many."""
  structures: frozenset[train.Structure]
  slots: int
  flag: str = 'max_members_per_program'


def demands_of(members: list[study_lib.Member], config: ml_collections.ConfigDict
               ) -> list[Demand]:
  """A program per structure of `members`, holding all their seeds (or at most
  --config.max_members_per_program)."""
  return [Demand(frozenset([structure]),
                 min(config.max_members_per_program, len(group) * config.seeds))
          for (structure, _, _), group in study_lib.group(members).items()]


class Search(abc.ABC):
  """One kind of search, named by --search."""

  name: str

  @abc.abstractmethod
  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    """Raises UserError for a study this search cannot run on `rows` training rows."""

  @abc.abstractmethod
  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    """Members (seed 0) that stand for what the final model may be drawn from: every
    configuration, or points at the edges of a space (to validate the retraining)."""

  def program_demands(self, config: ml_collections.ConfigDict) -> list[Demand]:
    """What its largest programs will ask of a device, checked before anything is put
    on one: by default, a program per structure of its configurations, of all their
    seeds or --config.max_members_per_program."""
    return demands_of(self.configurations(config), config)

  @abc.abstractmethod
  def run(self, config: ml_collections.ConfigDict, settings: runner.Settings,
          data: runner.LazyDeviceData) -> Outcome | None:
    """The search's outcome; None for a worker that only searches."""
