"""Which configurations of a multi-objective study's Pareto front are retrained as its
final models: the whole front, or at most --config.final_front_size of it, spread
along it (core.pareto.spread: the most crowded dropped first, the extremes kept).

The front is the report's (report.pareto.ranked: means over seeds, feasible first);
where no configuration is feasible, the least violation's rank 0 stands for it.
"""

import ml_collections

from jaxmlp.core import pareto
from jaxmlp.report import pareto as pareto_report
from jaxmlp.store import records as records_lib
from jaxmlp.studies import study as study_lib

# label -> (the configuration as the final model retrains it, its trained records)
Candidates = dict[str, tuple[study_lib.Member, list[records_lib.MemberRecord]]]


def several(config: ml_collections.ConfigDict) -> bool:
  return len(study_lib.objectives(config.objective)) > 1


def chosen(candidates: Candidates, config: ml_collections.ConfigDict
           ) -> tuple[list[study_lib.Member], int]:
  """(the configurations to retrain, the front's size), the first objective's best
  first; a configuration a search trained more than once (Hyperband's rounds) once."""
  objectives = study_lib.objectives(config.objective)
  frame = pareto_report.ranked({label: records for label, (_, records) in candidates.items()},
                               objectives, study_lib.constraints(config.constraints))
  front = frame[frame.pareto_rank == 0]
  if 'feasible' in front and front.feasible.any():
    front = front[front.feasible]
  keep = pareto.spread(pareto_report.losses(front, objectives), config.final_front_size)
  picked = front.iloc[keep].sort_values(objectives[0].name, ascending=objectives[0].minimize,
                                        kind='stable')
  members = {}
  for label in picked.label:
    member = candidates[label][0]
    members.setdefault(member.label, member)
  return list(members.values()), len(front)
