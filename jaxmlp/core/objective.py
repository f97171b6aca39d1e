"""The metrics a study optimizes and which way is better: decided once, from each name.

Every rule that ranks by the objective (the program's best-epoch tracker, a record's
best epoch, a configuration's score, the searches' rankings, Optuna's and
keras_tuner's directions) asks an `Objective` rather than reading the name again.
Several objectives are written `(val_accuracy, parameter_count)`, each name with its
direction by name or an explicit `name:min` / `name:max` (`objectives_of`); bounds on
them `(parameter_count <= 100000, val_accuracy >= 0.97)` (`constraints_of`).
"""

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxmlp.common import numbers
from jaxmlp.common.errors import UserError


class Direction(enum.Enum):
  """As optuna.study.StudyDirection (whose string values Optuna also accepts)."""
  MINIMIZE = 'minimize'
  MAXIMIZE = 'maximize'


MINIMIZED_ENDINGS = ('loss', 'count', 'flops', 'cost', '_ms')


@dataclasses.dataclass(frozen=True)
class Objective:
  name: str             # a metric of train.EpochMetrics, e.g. 'val_accuracy'
  direction: Direction

  @classmethod
  def of(cls, name: str) -> 'Objective':
    """`name` or `name:min` / `name:max`. By name, a loss, a count, FLOPs, a cost or a
    latency (`_ms`) is minimized; every other metric (an accuracy, an F1) maximized."""
    name, _, direction = name.partition(':')
    if direction:
      return cls(name, {'min': Direction.MINIMIZE, 'max': Direction.MAXIMIZE}[direction])
    return cls(name, Direction.MINIMIZE if name.endswith(MINIMIZED_ENDINGS)
               else Direction.MAXIMIZE)

  @property
  def minimize(self) -> bool:
    return self.direction is Direction.MINIMIZE

  def better(self, new, old):
    """new strictly better than old; traced inside jit as one comparison (a NaN is
    never better)."""
    return new < old if self.minimize else new > old

  @property
  def worst(self) -> float:
    """A value every finite one is better than."""
    return math.inf if self.minimize else -math.inf

  def best_value(self, values: Sequence[float | None]) -> float:
    """The best of a history (None, a diverged epoch, is skipped); NaN if none is."""
    pick = np.nanmin if self.minimize else np.nanmax
    return pick(numbers.nan_if_none(values))

  def best_epoch(self, values: Sequence[float | None]) -> int | None:
    """The 1-based epoch the tracker keeps: the first to reach the best finite value;
    None when no epoch has one."""
    scores = numbers.nan_if_none(values)
    if not np.isfinite(scores).any():
      return None
    scores[~np.isfinite(scores)] = np.nan
    return int((np.nanargmin if self.minimize else np.nanargmax)(scores)) + 1

  def loss(self, value):
    """`value` as a loss, lower better: negated where the objective is maximized
    (works on arrays too)."""
    return value if self.minimize else -value

  def sort_key(self, score: float) -> tuple[bool, float]:
    """Ascending order is best first; a NaN score (a diverged run) sorts last."""
    return math.isnan(score), self.loss(np.nan_to_num(score))

  def best_first(self, items: list, score: Callable[[Any], float]) -> list:
    """`items` by their `score`, best first, NaN last; ties keep their order."""
    return sorted(items, key=lambda item: self.sort_key(score(item)))

  @property
  def optuna_direction(self) -> str:
    """optuna.create_study's direction."""
    return self.direction.value

  @property
  def keras_tuner_direction(self) -> str:
    """keras_tuner.Objective's direction."""
    return 'min' if self.minimize else 'max'


def objectives_of(value: str | Sequence[str], known: Sequence[str]) -> tuple[Objective, ...]:
  """One objective (`val_accuracy`) or several (`(val_accuracy, parameter_count:min)`,
  or a sequence of names), each among `known`; a mistake is one line naming it."""
  if isinstance(value, str):
    text = value.strip()
    if text[:1] in '([' and text[-1:] in ')]':
      text = text[1:-1]
    names = [n.strip().strip('\'"') for n in text.split(',')]
    names = [n for n in names if n]
  else:
    names = [str(n).strip() for n in value]
  if not names:
    raise UserError(f'--config.objective={value!r} names no objective: give one of '
                    f'{", ".join(known)}, or several as (NAME, NAME)')
  seen = set()
  for name in names:
    bare, colon, direction = name.partition(':')
    if bare not in known:
      raise UserError(f'--config.objective: {bare!r} is not an objective: choose from '
                      f'{", ".join(known)} (each may end in :min or :max)')
    if colon and direction not in ('min', 'max'):
      raise UserError(f'--config.objective: {name!r}: a direction is :min or :max')
    if bare in seen:
      raise UserError(f'--config.objective: {bare} is given twice: name each objective once')
    seen.add(bare)
  return tuple(Objective.of(name) for name in names)


_CONSTRAINT = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*(\S+)$')


@dataclasses.dataclass(frozen=True)
class Constraint:
  """`name <= bound` or `name >= bound`. Its violation is how far a value lies past the
  bound (<= 0 where it holds: Optuna's constraints_func convention); NaN is +inf."""
  name: str
  bound: float
  at_most: bool   # name <= bound

  def violation(self, value):
    """Works on arrays too."""
    value = np.asarray(value, np.float64)
    gap = value - self.bound if self.at_most else self.bound - value
    return np.where(np.isnan(gap), np.inf, gap)

  def __str__(self) -> str:
    return f'{self.name} {"<=" if self.at_most else ">="} {self.bound:g}'


def constraints_of(value: str | Sequence[str], known: Sequence[str]
                   ) -> tuple[Constraint, ...]:
  """`(parameter_count <= 100000, val_accuracy >= 0.97)` (or a sequence of such
  texts; '' or () for none), each on a name among `known`; a mistake is one line."""
  if isinstance(value, str):
    text = value.strip()
    if text[:1] in '([' and text[-1:] in ')]':
      text = text[1:-1]
    texts = [t.strip().strip('\'"') for t in text.split(',')]
  else:
    texts = [str(t).strip() for t in value]
  out = []
  for text in [t for t in texts if t]:
    match = _CONSTRAINT.match(text)
    try:
      bound = float(match.group(3)) if match else math.nan
    except ValueError:
      bound = math.nan
    if not match or not math.isfinite(bound):
      raise UserError(f'--config.constraints: {text!r} is not a bound: write NAME <= NUMBER '
                      "or NAME >= NUMBER, e.g. '(parameter_count <= 100000,)'")
    if match.group(1) not in known:
      raise UserError(f'--config.constraints: {match.group(1)!r} is not a name a constraint '
                      f'may bound: choose from {", ".join(known)}')
    out.append(Constraint(match.group(1), bound, match.group(2) == '<='))
  return tuple(out)
