"""What a trial of a study of several objectives is told, and is ranked by at a rung:
each objective's mean over its executions (a validation metric at the epoch the
tracker kept, or the network's cost: report.pareto.objective_value), and each
constraint's value (<= 0 where it holds), as Optuna's constraints_func gives them."""

import numpy as np

from jaxmlp.core import pareto
from jaxmlp.report import pareto as pareto_report
from jaxmlp.store import records as records_lib
from jaxmlp.studies import study as study_lib


class Objectives:
  """A study's objectives and constraints, as its trials are told and ranked."""

  def __init__(self, config):
    self.objectives = study_lib.objectives(config.objective)
    self.constraints = study_lib.constraints(config.get('constraints', ''))

  def values(self, records: list[records_lib.MemberRecord]) -> list[float]:
    """Each objective's mean over the executions (NaN where one diverged)."""
    return [float(np.mean([pareto_report.objective_value(r, o.name) for r in records]))
            for o in self.objectives]

  def losses(self, values: list[float]) -> list[float]:
    """`values` as losses, every one minimized."""
    return [float(o.loss(v)) for o, v in zip(self.objectives, values)]

  def constraint_values(self, records: list[records_lib.MemberRecord]) -> list[float]:
    """Each constraint's value by the executions' mean (<= 0: it holds)."""
    return [float(c.violation(np.mean([pareto_report.objective_value(r, c.name)
                                       for r in records]))) for c in self.constraints]

  def violation(self, constraint_values: list[float]) -> float:
    """Their total violation (0 where all hold)."""
    if not constraint_values:
      return 0.0
    return float(pareto.violation([constraint_values])[0])
