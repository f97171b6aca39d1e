"""keras_tuner 1.4.8's Hyperband rules that read no oracle state: how many brackets,
the size and epochs of each round (hyperband.py's `_get_num_brackets`, `_get_size`,
`_get_epochs`), the settings HyperbandOracle takes, where consecutive failures stop a
search, and the trial as HyperbandOracle creates it.

* Trial ids. keras_tuner numbers trials `f"{{:0{len(str(max_trials))}d}}"`;
  HyperbandOracle has max_trials None, and len('None') == 4, so ids are '0000',
  '0001', ... (five digits from the 10000th trial on).
"""

import dataclasses
import math
from typing import Any

# A trial's status: handed out and not yet reported, or reported (FAILED: a NaN score).
RUNNING, COMPLETED, FAILED = 'RUNNING', 'COMPLETED', 'FAILED'


def num_brackets(max_epochs: int, factor: int) -> int:
  epochs, brackets = max_epochs, 0
  while epochs >= 1:  # keras_tuner's min_epochs
    epochs /= factor
    brackets += 1
  return brackets


def size(max_epochs: int, factor: int, bracket: int, round_: int) -> int:
  """Trials in a round; each bracket costs about the same."""
  last = math.ceil(1 + math.log(max_epochs, factor)) / (bracket + 1)
  return math.ceil(last * factor ** (bracket - round_))


def epochs(max_epochs: int, factor: int, bracket: int, round_: int) -> int:
  """The epoch a round's trials train up to (counted from the trial's start)."""
  return math.ceil(max_epochs / factor ** (bracket - round_))


def schedule(max_epochs: int, factor: int) -> list[list[tuple[int, int]]]:
  """Per bracket, most aggressive first: [(size, epochs) for each round]."""
  return [[(size(max_epochs, factor, b, r), epochs(max_epochs, factor, b, r))
           for r in range(b + 1)]
          for b in reversed(range(num_brackets(max_epochs, factor)))]


@dataclasses.dataclass(frozen=True)
class Trial:
  """One trial as keras_tuner's HyperbandOracle creates it."""
  trial_id: str            # '0000', '0001', ... in creation order
  values: dict[str, Any]   # hyperparameter name -> value (no tuner/* keys)
  bracket: int             # tuner/bracket
  round: int               # tuner/round
  initial_epoch: int       # tuner/initial_epoch
  epochs: int              # tuner/epochs (cumulative, from the lineage's start)
  parent_id: str | None    # tuner/trial_id: the trial it continues from, or None
  iteration: int = 0       # the Hyperband iteration (not a keras_tuner value)

  @property
  def keras_tuner_values(self) -> dict[str, Any]:
    """`trial.hyperparameters.values` in keras_tuner, tuner/* keys included."""
    values = dict(self.values)
    if self.parent_id is not None:
      values['tuner/trial_id'] = self.parent_id
    values.update({'tuner/epochs': self.epochs, 'tuner/initial_epoch': self.initial_epoch,
                   'tuner/bracket': self.bracket, 'tuner/round': self.round})
    return values


def check_settings(max_epochs: int, factor: int, iterations: int, seed: int,
                   objective_direction: str,
                   max_consecutive_failed_trials: int | None) -> None:
  """Raises ValueError for settings HyperbandOracle refuses, or that the port does not
  take (iterations 0, a seed of 0: keras_tuner's 'unlimited' and 'random')."""
  def positive_int(name, value, least):
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
      raise ValueError(f'{name} must be an int >= {least}, got {value!r}')
  positive_int('max_epochs', max_epochs, 1)
  positive_int('factor', factor, 2)   # HyperbandOracle: factor needs to be > 1
  positive_int('iterations', iterations, 1)
  positive_int('seed', seed, 1)
  if max_consecutive_failed_trials is not None:
    positive_int('max_consecutive_failed_trials', max_consecutive_failed_trials, 1)
  if objective_direction not in ('max', 'min'):
    raise ValueError(f"objective_direction must be 'max' or 'min', "
                     f'got {objective_direction!r}')


def consecutive_failures_end(statuses: dict[str, str], limit: int | None) -> str | None:
  """Oracle._check_consecutive_failures over the sequential end order (creation
  order, the order of `statuses`): the trial at which it would raise, if known from
  the reports so far.

  keras_tuner raises RuntimeError('Number of consecutive failures exceeded the limit
  of 3.') from `end_trial` once `max_consecutive_failed_trials` trials in a row (in
  end order, which for a sequential tuner is creation order) failed; the oracle's
  `next_trials` raises it once such a run is known.
  """
  if limit is None:
    return None
  run = 0
  for trial_id, status in statuses.items():
    run = run + 1 if status == FAILED else 0   # a pending trial breaks a known run
    if run == limit:
      return trial_id
  return None
