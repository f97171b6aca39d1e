"""Population-based training's decisions, on the host: the space it explores, the first
population drawn from it, who copies whom, and how a copy's hyperparameters move.

Every draw comes from a generator seeded by (search_seed, generation), so a rerun (or
a run resumed from a checkpoint) decides exactly as the first did. Values are kept as
float32 numbers, what the program trains with, so a resumed run perturbs the same
numbers the interrupted one did. Ray Tune's PopulationBasedTraining semantics
(quantile_fraction, resample_probability, perturbation_factors), with two changes:
a perturbed value is clipped to the space's bounds, and ties rank by member index.
"""

import dataclasses
import math
from typing import Any

import ml_collections
import numpy as np

from jaxmlp.core import costs
from jaxmlp.core import objective as objective_lib
from jaxmlp.core import pareto
from jaxmlp.common.errors import UserError
from jaxmlp.engine import latency
from jaxmlp.studies import space
from jaxmlp.studies import study as study_lib


@dataclasses.dataclass(frozen=True)
class Dimension:
  """One explored hyperparameter: a float range (log or not) or numeric choices."""
  field: str
  low: float = 0.0
  high: float = 0.0
  log: bool = False
  choices: tuple[float, ...] = ()

  @classmethod
  def of(cls, field: str, value) -> 'Dimension':
    if space.is_distribution(value):
      space.check(field, value)
      if value[space.KEY] == 'categorical':
        return cls(field, choices=tuple(sorted(float(c) for c in value['choices'])))
      return cls(field, float(value['low']), float(value['high']), bool(value['log']))
    return cls(field, choices=tuple(sorted(float(c) for c in value)))   # a sweep axis

  @property
  def edges(self) -> tuple[float, float]:
    return (self.choices[0], self.choices[-1]) if self.choices else (self.low, self.high)

  def sample(self, rng: np.random.Generator) -> float:
    if self.choices:
      return self.choices[rng.integers(len(self.choices))]
    if self.log:
      return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
    return float(rng.uniform(self.low, self.high))

  def perturb(self, value: float, rng: np.random.Generator, factors: tuple[float, ...]
              ) -> float:
    """Ray's perturbation: a choice moves to a neighbour, a number is scaled; then
    kept inside the space (Ray lets it leave: ray#5035, #12717)."""
    if self.choices:
      index = int(np.argmin([abs(c - value) for c in self.choices]))
      index = min(max(index + (-1 if rng.random() < 0.5 else 1), 0), len(self.choices) - 1)
      return self.choices[index]
    return float(np.clip(value * factors[rng.integers(len(factors))], self.low, self.high))


def float32(value: float) -> float:
  """The number the program trains with (float32), as a Python float."""
  return float(np.float32(value))


def dimensions(config: ml_collections.ConfigDict) -> tuple[dict[str, Any], list[Dimension]]:
  """(the arm's fields, the explored dimensions in config order); refuses a space PBT
  cannot explore inside one program: structure fields must hold one value."""
  fields = config.to_dict()
  arms = fields.pop('arms') or {}
  if arms and not config.arm:
    raise UserError('--search=pbt trains one arm: pass --config.arm=NAME')
  fields.update(arms.get(config.arm, {}))
  dims = []
  for field in study_lib.MEMBER_FIELDS:
    value = fields[field]
    varies = space.has_distribution(field, value) or study_lib.is_sweep(field, value)
    if not varies:
      continue
    if field not in study_lib.HPARAM_FIELDS or (
        space.is_distribution(value) and value[space.KEY] == 'int'):
      raise UserError(f'--config.{field} varies, but --search=pbt changes only numeric '
                      f'hyperparameters inside one program ({", ".join(study_lib.HPARAM_FIELDS)}):'
                      f' give {field} one value')
    dims.append(Dimension.of(field, value))
  if not dims:
    raise UserError('--search=pbt needs a space to explore: give a hyperparameter a '
                    "distribution, e.g. --config.learning_rate='loguniform(1e-4, 1e-1)'")
  return fields, dims


def member_values(fields: dict[str, Any], dims: list[Dimension], point: dict[str, float]
                  ) -> dict[str, Any]:
  """A member's resolved values: the arm's fields with `point` for the explored ones."""
  return {**fields, **{d.field: point[d.field] for d in dims}}


def first_population(n: int, dims: list[Dimension], seed: int) -> np.ndarray:
  """(n, F) float32: each member's starting point, drawn from the space."""
  rng = np.random.default_rng([seed, 0])
  return np.array([[float32(d.sample(rng)) for d in dims] for _ in range(n)], np.float32)


def ranked(scores_M: np.ndarray, objective: str, violation_M=None) -> list[int]:
  """Member indices best first by `objective` (its direction from core.objective);
  NaN (a diverged or stopped member) last; ties by member index. Several objectives
  (`scores_M` of losses, shape (M, K)): NSGA-II's order, feasible first where there
  is a `violation_M` (Deb's rules), as multi-objective PBT ranks (Dushatskiy et al.)."""
  scores_M = np.asarray(scores_M)
  if scores_M.ndim == 2:
    return [int(k) for k in pareto.best_first(scores_M, violation_M)]
  return objective_lib.Objective.of(objective).best_first(
      list(range(len(scores_M))), lambda k: float(scores_M[k]))


def pareto_scores(history: dict[str, np.ndarray], done: int,
                  members: list[study_lib.Member], config: ml_collections.ConfigDict
                  ) -> tuple[np.ndarray, np.ndarray | None]:
  """A generation's ranking of a study of several objectives: each member's losses
  (M, K) at the last epoch (a metric's value then, a cost its network's) and its
  constraints' total violation (None without constraints)."""
  def values(name):
    if name in costs.COSTS:
      return np.array([costs.of(name, m.values['hidden_sizes']) for m in members],
                      np.float64)
    if name in costs.LATENCIES:
      return np.array([latency.of(name, m.values['hidden_sizes']) for m in members],
                      np.float64)
    return np.asarray(history[name][:, done - 1], np.float64)
  losses_MK = pareto.failed_as_worst(np.stack(   # a diverged member: worst in all
      [o.loss(values(o.name)) for o in study_lib.objectives(config.objective)], axis=1))
  bounds = study_lib.constraints(config.get('constraints', ''))
  if not bounds:
    return losses_MK, None
  return losses_MK, pareto.violation(np.stack([c.violation(values(c.name)) for c in bounds],
                                              axis=1))


def exploit_count(n: int, quantile: float) -> int:
  """How many members copy others each generation: ceil(n*q), at most n/2."""
  return min(math.ceil(n * quantile - 1e-9), n // 2)


def decide(scores_M: np.ndarray, values_MF: np.ndarray, dims: list[Dimension],
           config: ml_collections.ConfigDict, generation: int, violation_M=None
           ) -> list[tuple[int, int, np.ndarray]]:
  """(target, donor, the target's new values) per exploit of a generation, targets in
  index order. Each target's donor is drawn from the top quantile; the donor's values
  are then resampled (with probability pbt_resample) or perturbed, each dimension on
  its own, as Ray's explore does. Scores of several objectives rank by Pareto
  dominance (`ranked`), the quantiles then taken from that order."""
  k = exploit_count(len(scores_M), config.pbt.quantile)
  if k == 0:
    return []
  order = ranked(scores_M, config.objective, violation_M)
  top, bottom = order[:k], sorted(order[-k:])
  rng = np.random.default_rng([config.search_seed, generation])
  out = []
  for target in bottom:
    donor = top[int(rng.integers(k))]
    new = []
    for d, value in zip(dims, values_MF[donor]):
      if rng.random() < config.pbt.resample:
        new.append(float32(d.sample(rng)))
      else:
        new.append(float32(d.perturb(float(value), rng, tuple(config.pbt.factors))))
    out.append((target, donor, np.array(new, np.float32)))
  return out
