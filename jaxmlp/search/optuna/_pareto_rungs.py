"""Successive halving by Pareto rank: the pruning Optuna's pruners cannot do for a study
of several objectives (a trial's intermediate value there is one float).

The rungs are Optuna's SuccessiveHalvingPruner's (min_resource 1, reduction factor
3: epochs 1, 3, 9, ...), asynchronous as there: a trial that reaches a rung is ranked
with every trial of the study that reached it before (any worker's: the rung's
values are user attributes in the storage), by non-dominated sorting of its
objectives, feasibility first (Deb's rules), then crowding distance (NSGA-II's order,
as multi-objective ASHA ranks, Schmucker et al. 2021). It goes on if it is among the
best n // 3 of the n (while n < 3: if it has rank 0, where Optuna's single-objective
rule asks for the best value), else it is pruned and its slots take the next trial. A
trial with a value that is not finite (diverged) is the worst in every objective.
Each trial's value at a rung is the one it would be told if it ended there: each
objective's mean over its executions at the epoch the tracker kept so far.
"""

import math

import numpy as np
import optuna

from jaxmlp.core import pareto

MIN_RESOURCE = 1
REDUCTION_FACTOR = 3
PREFIX = 'pareto_rung_'   # user attribute: a trial's losses and violation at a rung


def rung_of(epoch: int) -> int | None:
  """The rung that ends at `epoch` (1-based): epoch = MIN_RESOURCE x 3^rung; else None."""
  rung, resource = 0, MIN_RESOURCE
  while resource < epoch:
    rung, resource = rung + 1, resource * REDUCTION_FACTOR
  return rung if resource == epoch else None


def _finite_or_none(values) -> list[float | None]:
  return [float(v) if math.isfinite(v) else None for v in values]   # JSON has no inf


def decide(study: optuna.Study, trial: optuna.trial.Trial, rung: int,
           losses_M: list[float], violation: float) -> bool:
  """Writes the trial's place at `rung` and whether it goes on (True) or is pruned."""
  mine = {'losses': _finite_or_none(losses_M), 'violation': float(min(violation, 1e300))}
  trial.set_user_attr(f'{PREFIX}{rung}', mine)
  reached = [t for t in study.get_trials(deepcopy=False)
             if f'{PREFIX}{rung}' in t.user_attrs and t.number != trial.number]
  points = [t.user_attrs[f'{PREFIX}{rung}'] for t in reached] + [mine]   # as stored
  losses_NM = pareto.failed_as_worst(   # a diverged trial: worst in every objective
      [[np.inf if v is None else v for v in p['losses']] for p in points])
  violation_N = np.array([p['violation'] for p in points], np.float64)
  violation_N = violation_N if (violation_N > 0).any() else None
  order = pareto.best_first(losses_NM, violation_N)
  place = int(np.flatnonzero(order == len(points) - 1)[0])   # this trial is the last
  kept = len(order) // REDUCTION_FACTOR
  if kept:
    goes_on = place < kept
  else:   # too few to keep a share: as Optuna's, the best goes on; here, rank 0 (the
    # front, or where none is feasible the least violation: Deb's rules)
    goes_on = pareto.nondominated_ranks(losses_NM, violation_N)[-1] == 0
  trial.set_user_attr(f'{PREFIX}{rung}_decision', {
      'place': place, 'of': len(order), 'kept': kept,
      'decision': 'continued' if goes_on else 'pruned'})
  return goes_on


def decisions(trials: list[optuna.trial.FrozenTrial]) -> dict[int, dict[str, int]]:
  """Per rung: how many trials reached it, continued and were pruned there."""
  out: dict[int, dict[str, int]] = {}
  for t in trials:
    for key, value in t.user_attrs.items():
      if key.startswith(PREFIX) and key.endswith('_decision'):
        rung = int(key[len(PREFIX):-len('_decision')])
        counts = out.setdefault(rung, {'reached': 0, 'continued': 0, 'pruned': 0})
        counts['reached'] += 1
        counts[value['decision']] += 1
  return dict(sorted(out.items()))
