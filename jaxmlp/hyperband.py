"""Hyperband with keras_tuner's schedule, each round's trials trained together.

keras_tuner's HyperbandOracle: brackets from the most aggressive (many trials, few
epochs) to plain random search; in round r of bracket b, `size(b, r)` trials train up
to `epochs(b, r)` epochs; a round keeps the previous round's top trials by score and
continues them from their best epoch's weights (with a fresh optimizer, as
keras_tuner reloads weights only). The difference: keras_tuner trains one trial after
another, here every trial of a round trains at once (one program per shape group).
A trial's score is its best epoch's objective, averaged over its executions (seeds).
"""

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from jaxmlp import results
from jaxmlp import study as study_lib


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


@dataclasses.dataclass
class Trial:
  """One configuration trained in one round of a bracket (keras_tuner's Trial)."""
  trial_id: str
  configuration: study_lib.Member   # seed 0's member; executions use seeds 0..S-1
  bracket: int
  round: int
  initial_epoch: int
  epochs: int
  parent: 'Trial | None' = None
  scores: list[float] = dataclasses.field(default_factory=list)   # per seed
  records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  best_params: list[Any] = dataclasses.field(default_factory=list)  # per seed

  @property
  def score(self) -> float:
    return float(np.mean(self.scores)) if self.scores else math.nan


def better_first(trials: list[Trial], objective: str) -> list[Trial]:
  """By score, best first; a NaN (diverged) score ranks last; ties keep their order."""
  return results.best_first(trials, lambda t: t.score, objective)


def promote(trials: list[Trial], keep: int, objective: str) -> list[Trial]:
  return better_first(trials, objective)[:keep]


def search(configurations: list[study_lib.Member], *, max_epochs: int, factor: int,
           iterations: int, seed: int, objective: str,
           train_round: Callable[[list[Trial]], None]) -> list[Trial]:
  """Runs Hyperband over `configurations`; `train_round` trains a round's trials
  together and fills in their scores, records and best weights.

  Configurations are sampled without replacement (seeded): once every one has been
  tried, no new trials start and the search ends, as keras_tuner stops when it can
  no longer draw untried values; a bracket that could only be partly filled still
  runs its rounds with what it has.
  """
  rng = np.random.default_rng(seed)
  untried = list(rng.permutation(len(configurations)))
  trials: list[Trial] = []
  for iteration in range(iterations):
    for bracket in reversed(range(num_brackets(max_epochs, factor))):
      if not untried:
        return trials
      take = size(max_epochs, factor, bracket, 0)
      drawn, untried = untried[:take], untried[take:]
      current = [Trial(f'i{iteration}-b{bracket}-r0-{configurations[i].label}',
                       configurations[i], bracket, 0, 0,
                       epochs(max_epochs, factor, bracket, 0)) for i in drawn]
      for round_ in range(bracket + 1):
        if round_:
          keep = min(size(max_epochs, factor, bracket, round_), len(current))
          current = [Trial(f'i{iteration}-b{bracket}-r{round_}-{t.configuration.label}',
                           t.configuration, bracket, round_, t.epochs,
                           epochs(max_epochs, factor, bracket, round_), parent=t)
                     for t in promote(current, keep, objective)]
        train_round(current)
        trials += current
  return trials


def best_trial(trials: list[Trial], objective: str) -> Trial:
  return better_first(trials, objective)[0]


def cost(trials: list[Trial]) -> int:
  """Member-epochs trained: every seed of every trial, early stops counted."""
  return sum(r['epochs_trained'] for t in trials for r in t.records)


def summary_rows(trials: list[Trial], objective: str) -> list[dict[str, Any]]:
  """Like keras_tuner's results_summary(): every trial, best first."""
  rows = []
  for t in better_first(trials, objective):
    rows.append(dict(
        trial=t.trial_id, bracket=t.bracket, round=t.round,
        configuration=t.configuration.label,
        **{f: t.configuration.values[f] for f in t.configuration.swept},
        initial_epoch=t.initial_epoch, epochs=t.epochs,
        epochs_trained=int(np.mean([r['epochs_trained'] for r in t.records])),
        score=t.score, score_std=float(np.std(t.scores)),
        continued_from=t.parent.trial_id if t.parent else ''))
  return rows
