"""What a search is to the rest of the tool: a `Search` declares its settings, checks a
study before anything trains, runs it, and ends with an `Outcome`, which knows its best
configuration, the records it trained, and its own part of the report.

A new search is one module (or a subpackage whose __init__ exposes the class) with a
subclass of each, and one line in registry.py. Its settings are its own config section,
`config.NAME.*`, set as --config.NAME.SETTING=VALUE; nothing outside it names them.
"""

import abc
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import ml_collections

from jaxmlp.common.errors import UserError
from jaxmlp.core import train
from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import plan
from jaxmlp.engine import runner
from jaxmlp.search import front
from jaxmlp.store import records as records_lib
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

  def front_candidates(self, config: ml_collections.ConfigDict
                       ) -> dict[str, tuple[study_lib.Member, list[records_lib.MemberRecord]]]:
    """A study of several objectives: label -> (configuration, its records) that its
    Pareto front is drawn from, for the final models (search/front.py); none, by
    default: then the best configuration alone is retrained."""
    del config
    return {}

  def write_summary(self, study_dir: Path) -> str | None:
    """Files summing up the records, and what the command prints of them (or None)."""
    del study_dir
    return None


def _whole(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole(low: int, high: int | None = None) -> Callable[[Any], str | None]:
  """A check: a whole number >= low (and <= high, where given)."""
  if high is None:
    return lambda v: None if _whole(v) and v >= low else f'give a whole number >= {low}'
  return lambda v: (None if _whole(v) and low <= v <= high
                    else f'give a whole number from {low} to {high}')


def number_in(low: float, high: float) -> Callable[[Any], str | None]:
  """A check: a number in [low, high]."""
  return lambda v: (None if _number(v) and low <= v <= high
                    else f'give a number from {low:g} to {high:g}')


def one_of(*choices: str) -> Callable[[Any], str | None]:
  return lambda v: None if v in choices else f"choose one of {', '.join(choices)}"


def positive_numbers(v) -> str | None:
  """A check: a non-empty tuple of positive finite numbers."""
  ok = isinstance(v, tuple) and v and all(_number(f) and 0 < f < math.inf for f in v)
  return None if ok else "give positive numbers, e.g. '(0.8, 1.2)'"


def text(v) -> str | None:
  return None if isinstance(v, str) else 'give a word or a path'


@dataclasses.dataclass(frozen=True)
class Setting:
  """One setting of a search: --config.SEARCH.NAME=VALUE."""
  name: str
  default: Any
  help: str
  check: Callable[[Any], str | None]   # the rule a value breaks, or None
  free: bool = False                   # may change on a rerun (a budget, a layout)
  legacy: str = ''                     # its flat name in releases before sections


class Demand(NamedTuple):
  """Programs of `slots` members (0: one a device) of any of `structures`; `flag` is
  the setting that asks for that many."""
  structures: frozenset[train.Structure]
  slots: int
  flag: str = 'max_members_per_program'


def largest_of(members: list[study_lib.Member], count: int
               ) -> list[tuple[train.Structure, int]]:
  """`count` members of the largest structure among `members`' (an upper bound where
  a search draws its structures as it goes)."""
  return [(max((m.structure for m in members), key=plan.parameter_count), count)]


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
  help: str = ''                      # one sentence for --search's help
  shares_folder: bool = False         # workers share a study folder (each its own lock)
  settings: tuple[Setting, ...] = ()  # its config section, config.<name>.*

  @classmethod
  def defaults(cls) -> dict[str, Any]:
    return {s.name: s.default for s in cls.settings}

  def check_settings(self, config: ml_collections.ConfigDict) -> None:
    """Refuses (one line) a value of its section that breaks its setting's rule."""
    section = config.get(self.name, {})
    for s in self.settings:
      value = section.get(s.name, s.default)
      rule = s.check(value)
      if rule:
        raise UserError(f'--config.{self.name}.{s.name}={_shown(value)} is impossible: '
                        f'{rule}')

  def adds_work(self, field: str, old, new) -> bool:
    """Whether a rerun whose `field` (dotted) went from `old` to `new` keeps what the
    run trained and only adds to it (then it resumes); by default nothing does."""
    del field, old, new
    return False

  def frame_columns(self, study_dir: Path
                    ) -> Callable[[str, records_lib.MemberRecord], dict[str, Any]]:
    """(role, record) -> columns of its own for that member's row of
    jaxmlp.read_results (a Hyperband trial's bracket...); by default none."""
    del study_dir
    return lambda role, record: {}

  @abc.abstractmethod
  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    """Raises UserError for a study this search cannot run on `rows` training rows
    (check_settings has passed)."""

  @abc.abstractmethod
  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    """Members (seed 0) that stand for what the final model may be drawn from: every
    configuration, or points at the edges of a space (to validate the retraining)."""

  def planned_members(self, config: ml_collections.ConfigDict
                      ) -> list[tuple[train.Structure, int]]:
    """(structure, how many members of it) the search writes at most, its final model
    aside: what the disk must hold. By default every configuration, every seed."""
    counts: dict[train.Structure, int] = {}
    for m in self.configurations(config):
      counts[m.structure] = counts.get(m.structure, 0) + config.seeds
    return list(counts.items())

  def program_demands(self, config: ml_collections.ConfigDict) -> list[Demand]:
    """What its largest programs will ask of a device, checked before anything is put
    on one: by default, a program per structure of its configurations, of all their
    seeds or --config.max_members_per_program."""
    return demands_of(self.configurations(config), config)

  @abc.abstractmethod
  def run(self, config: ml_collections.ConfigDict, settings: runner.Settings,
          data: runner.LazyDeviceData) -> Outcome | None:
    """The search's outcome; None for a worker that only searches."""

  def final_configurations(self, config: ml_collections.ConfigDict
                           ) -> list[study_lib.Member]:
    """What its final model may train (checked, and fitted to memory, before anything
    runs): its configurations as the final model retrains them; none without one."""
    if not config.final_epochs:
      return []
    return [study_lib.final_member(m, config) for m in self.configurations(config)]

  def final_model(self, config: ml_collections.ConfigDict, settings: runner.Settings,
                  data: runner.LazyDeviceData, outcome: Outcome
                  ) -> records_lib.FinalModel | None:
    """The study's final model (the pipeline's one call for it): by default the best
    configuration retrained as the original's last fit (final_epochs epochs at
    final_batch_size, final_shuffle) into final/; None where final_epochs is 0."""
    if not config.final_epochs:
      return None
    candidates = outcome.front_candidates(config) if front.several(config) else {}
    if candidates:   # the front, together, in as few programs as the planner allows
      chosen, size = front.chosen(candidates, config)
      records = runner.run_final(config, settings, data, *chosen)
      return records_lib.FinalModel(records, 'final', retrained_how(config) + (
          f'; {len(chosen)} of the {size} configurations of the Pareto front'
          + (', spread along it' if len(chosen) < size else '')))
    records = runner.run_final(config, settings, data, outcome.best)
    return records_lib.FinalModel(records, 'final', retrained_how(config))


def retrained_how(config: ml_collections.ConfigDict, what: str = 'retrained') -> str:
  """The report's words for a final model retrained as the config says."""
  return (f'{what} {config.final_epochs} epochs at batch {config.final_batch_size}'
          f'{", shuffled" if config.final_shuffle else ""}')


def _shown(value) -> str:
  if isinstance(value, tuple):
    return f"'({', '.join(map(str, value))})'"
  return str(value)
