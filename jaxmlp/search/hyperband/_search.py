"""--search=hyperband: keras_tuner's Hyperband over a study's configurations, every
batch of trials the oracle hands out trained together.

The oracle (_oracle.py) creates exactly keras_tuner's trials; each trial runs its
`seeds` executions, one member each, and is scored as keras_tuner scores it: each
execution's best-epoch objective, averaged. A continued trial starts every execution
from its parent's one saved checkpoint, as keras_tuner's `load_weights` does: the
weights of the best epoch over all the parent's executions (the first to reach that
value), with a fresh optimizer; its epochs are numbered on from the parent's, so its
dropout masks and shuffles never repeat the parent's.
"""

import dataclasses
import math
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxmlp.core import objective as objective_lib
from jaxmlp.data import mnist as data_lib
from jaxmlp.common import faults
from jaxmlp.engine import runner
from jaxmlp.common.errors import UserError
from jaxmlp.store import records as records_lib
from jaxmlp.report import growth
from jaxmlp.report import pareto as pareto_report
from jaxmlp.report import summaries
from jaxmlp.search import base
from jaxmlp.search.hyperband import _oracle
from jaxmlp.search.hyperband import _report
from jaxmlp.studies import study as study_lib


@dataclasses.dataclass
class TrialResult:
  trial: _oracle.Trial
  configuration: study_lib.Member     # seed 0's member of the trial's configuration
  records: list[records_lib.MemberRecord]  # per execution (seed)
  score: float                        # the (first validation) objective's score
  status: str                         # COMPLETED or FAILED (a NaN score)
  losses: tuple[float, ...] | None = None   # several objectives: what the oracle was told
  violation: float | None = None   # constraints' total over the executions' means


@dataclasses.dataclass
class HyperbandOutcome(base.Outcome):
  """A Hyperband search's trials, in creation order, and its best."""
  trials: list[TrialResult]
  best_trial: TrialResult
  stop_reason: str

  @property
  def best(self) -> study_lib.Member:
    return self.best_trial.configuration

  @property
  def records(self) -> list[records_lib.MemberRecord]:
    return [r for t in self.trials for r in t.records]

  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    what = (f'Hyperband (keras_tuner schedule, max_epochs {config.hyperband.max_epochs}, '
            f'factor {config.hyperband.factor}, {config.hyperband.iterations} '
            f'iteration(s)): {len(self.trials)} trials x {config.seeds} executions (seeds)')
    return summaries.with_program_costs(what, self.records)

  def front_candidates(self, config: ml_collections.ConfigDict):
    """Every completed trial (a configuration trained to several budgets competes at
    each: the front keeps what it dominates by)."""
    del config
    return {t.records[0].label: (t.configuration, t.records) for t in self.trials
            if t.status == 'COMPLETED'}

  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    del split, retrained   # the final model, if any, has its own section
    lines = _report.section(self.trials, self.best_trial, self.stop_reason, config,
                            study_dir)
    if len(study_lib.objectives(config.objective)) > 1:
      grouped = {t.records[0].label: t.records for t in self.trials
                 if t.status == 'COMPLETED'}
      lines += (pareto_report.section(grouped, config, study_dir)
                + growth.section(study_dir, config))
    return lines


def _encode(field: str, value) -> Any:
  """A configuration's value as a keras_tuner Choice value (str, int, float)."""
  if isinstance(value, tuple):
    return study_lib.format_value(value)
  return value


def space_of(configurations: list[study_lib.Member]) -> tuple[dict[str, list], dict]:
  """The search space (one Choice per swept field, in config order; 'arm' first when
  there are arms) and the configuration of each point, which must form a grid."""
  fields = list(dict.fromkeys(f for m in configurations for f in m.swept))
  arms = list(dict.fromkeys(m.arm for m in configurations))
  space = {'arm': arms} if len(arms) > 1 else {}
  for f in fields:
    space[f] = list(dict.fromkeys(_encode(f, m.values[f]) for m in configurations))
  point = lambda m: tuple(m.arm if f == 'arm' else _encode(f, m.values[f]) for f in space)
  by_point = {point(m): m for m in configurations}
  if not space or len(by_point) != math.prod(len(v) for v in space.values()):
    raise UserError('--search=hyperband draws configurations from sweep axes that form a '
                    'grid: give the study at least one sweep axis (e.g. --config.'
                    "learning_rate='(0.01, 0.001)'), with the same axes in every arm")
  return space, by_point


def _best_execution(records: list[records_lib.MemberRecord], objective: str) -> int:
  """The execution whose best epoch keras_tuner's shared SaveBestEpoch kept: the best
  value over executions, the earliest to reach it."""
  scores = [summaries.score([r], objective)[0] for r in records]
  return objective_lib.Objective.of(objective).best_first(list(range(len(records))),
                                                          lambda k: scores[k])[0]


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.LazyDeviceData) -> HyperbandOutcome:
  configurations = study_lib.expand(config, 1)
  space, by_point = space_of(configurations)
  oracle = _oracle.Oracle(
      space, max_epochs=config.hyperband.max_epochs, factor=config.hyperband.factor,
      iterations=config.hyperband.iterations, seed=config.search_seed,
      objective_direction=objective_lib.Objective.of(
          study_lib.tracked_objective(config.objective)).keras_tuner_direction)
  finished: dict[str, TrialResult] = {}
  checkpoints: dict[str, Any] = {}   # the last batch's trial id -> weights its children load
  stop_reason = 'keras_tuner\'s oracle returned STOPPED'
  while True:
    try:
      batch = oracle.next_trials()
    except RuntimeError as e:  # keras_tuner raises after 3 failed trials in a row
      stop_reason = f'keras_tuner would stop here: {e}'
      break
    if not batch:
      break
    produced: dict[str, Any] = {}
    for initial_epoch in sorted({t.initial_epoch for t in batch}):
      trials = [t for t in batch if t.initial_epoch == initial_epoch]
      _train(trials, config, settings, data, by_point, space, finished, checkpoints,
             produced)
    for t in batch:
      result = finished[t.trial_id]
      oracle.report(t.trial_id, result.score if result.losses is None else result.losses,
                    result.violation)
      finished[t.trial_id].status = oracle.status(t.trial_id)
      faults.passed('trial')
    # A round's parents are all in the batch before it.
    checkpoints = produced
  if not finished:
    raise UserError('Hyperband ran no trial')
  ranked = [finished[t.trial_id] for t in oracle.best_trials(len(finished))]
  return HyperbandOutcome(
      [finished[t.trial_id] for t in oracle.trials if t.trial_id in finished], ranked[0],
      stop_reason)


def _train(trials: list[_oracle.Trial], config, settings, data, by_point, space,
           finished: dict[str, TrialResult], parents: dict[str, Any],
           produced: dict[str, Any]) -> None:
  """One batch's trials that start at the same epoch, every execution at once."""
  members, starts = [], []
  for t in trials:
    configuration = by_point[tuple(t.values[f] for f in space)]
    values = dict(configuration.values, epochs=t.epochs - t.initial_epoch)
    for seed in range(config.seeds):
      members.append(dataclasses.replace(
          configuration, label=f'trial-{t.trial_id}:{configuration.label}', seed=seed,
          values=values))
      if t.parent_id is not None:
        starts.append(parents[t.parent_id])
  first = trials[0]
  trained = runner.train_members(
      members, data, config=config, settings=settings, folder='trials',
      title=f'{config.name} hyperband bracket {first.bracket} round {first.round}',
      initial_params=starts if first.parent_id is not None else None,
      first_epoch=first.initial_epoch, want_params=True)
  for i, t in enumerate(trials):
    executions = trained[i * config.seeds:(i + 1) * config.seeds]
    records = [record for record, _ in executions]
    tracked = study_lib.tracked_objective(config.objective)
    score, _ = summaries.score(records, tracked)
    configuration = by_point[tuple(t.values[f] for f in space)]
    finished[t.trial_id] = TrialResult(t, configuration, records, score, 'RUNNING',
                                       _losses(records, config.objective),
                                       _violation(records, config.constraints))
    produced[t.trial_id] = executions[_best_execution(records, tracked)][1]


def _losses(records: list[records_lib.MemberRecord], objective: str
            ) -> tuple[float, ...] | None:
  """Several objectives: the trial's means over executions as losses (maximized ones
  negated), what the oracle ranks promotions by; one objective: None."""
  objectives = study_lib.objectives(objective)
  if len(objectives) == 1:
    return None
  return tuple(o.loss(float(np.mean([pareto_report.objective_value(r, o.name)
                                      for r in records]))) for o in objectives)


def _violation(records: list[records_lib.MemberRecord], constraints: str) -> float | None:
  """The constraints' total violation by the trial's means over executions (what
  feasibility is judged by); None without constraints."""
  bounds = study_lib.constraints(constraints)
  if not bounds:
    return None
  return float(sum(np.clip(c.violation(np.mean([pareto_report.objective_value(r, c.name)
                                                for r in records])), 0, None)
                   for c in bounds))
