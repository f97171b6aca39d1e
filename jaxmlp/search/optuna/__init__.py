"""--search=optuna: Optuna's samplers and pruners fill the slots of compiled programs.

_study holds what is Optuna's (the study, its storage, its samplers and pruners);
_space maps a study's distributions to Optuna's; _worker fills and refills the slots;
_search runs a worker and gathers its outcome; _report is its part of the report.
They import Optuna (a second to import) when the search runs, not for --help.
"""

import importlib.metadata
import re

import ml_collections

from jaxmlp.common import numbers
from jaxmlp.common.errors import UserError
from jaxmlp.search import base
from jaxmlp.studies import study as study_lib

SAMPLERS = ('tpe', 'random', 'cmaes', 'qmc', 'nsga2', 'nsga3', 'gp')
PRUNERS = ('none', 'median', 'successive_halving', 'hyperband')
# Those Optuna's samplers that take several objectives; the pruners that prune them
# here (successive halving by Pareto rank, in the program: _pareto_rungs).
MULTI_OBJECTIVE_SAMPLERS = ('tpe', 'random', 'qmc', 'nsga2', 'nsga3', 'gp')
MULTI_OBJECTIVE_PRUNERS = ('successive_halving', 'none')


class OptunaSearch(base.Search):
  name = 'optuna'
  help = ("Optuna's sampler and pruner fill the programs' slots, over a space of "
          'distributions.')
  shares_folder = True   # several workers on one study, each with --worker_id
  settings = (
      base.Setting('trials', 100, 'trials in all', base.whole(1), legacy='optuna_trials'),
      base.Setting('timeout', 0, 'or stop once this many seconds have passed (0: no '
                   'limit)', base.whole(0), free=True, legacy='optuna_timeout'),
      base.Setting('sampler', 'tpe', ', '.join(SAMPLERS), base.one_of(*SAMPLERS),
                   legacy='optuna_sampler'),
      base.Setting('pruner', 'median', ', '.join(PRUNERS), base.one_of(*PRUNERS),
                   legacy='optuna_pruner'),
      base.Setting('slots', 0, "trials' executions per program (0: what fits, at most a "
                   'quarter of the trials)', base.whole(0), free=True, legacy='optuna_slots'),
  )

  def adds_work(self, field: str, old, new) -> bool:
    """More trials: the study goes on."""
    return field == 'optuna.trials' and new >= old

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    from jaxmlp.search.optuna import _space  # pylint: disable=import-outside-toplevel
    # A trial's members are checked as it is asked; the space at its edges here.
    _space.validate_space(config, rows)
    if len(study_lib.objectives(config.objective)) > 1:
      _check_several_objectives(config)

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    """One point of the space (its values are checked at the edges by validate_config)."""
    from jaxmlp.search.optuna import _space  # pylint: disable=import-outside-toplevel
    return [_space.representative(config)]

  def program_demands(self, config: ml_collections.ConfigDict) -> list[base.Demand]:
    """Programs of --config.optuna.slots slots, rounded up to whole trials (all their
    seeds), of any structure the space holds."""
    slots = numbers.ceil_div(config.optuna.slots, config.seeds) * config.seeds
    return [base.Demand(frozenset(m.structure for m in self.configurations(config)), slots,
                        'optuna.slots')]

  def planned_members(self, config: ml_collections.ConfigDict):
    return base.largest_of(self.configurations(config), config.optuna.trials * config.seeds)

  def run(self, config, settings, data):
    from jaxmlp.search.optuna import _search  # pylint: disable=import-outside-toplevel
    return _search.run(config, settings, data)


def _check_several_objectives(config: ml_collections.ConfigDict) -> None:
  """A sampler and a pruner that can take the study's several objectives."""
  sampler, pruner = config.optuna.sampler, config.optuna.pruner
  if sampler not in MULTI_OBJECTIVE_SAMPLERS:
    raise UserError(f'--config.optuna.sampler={sampler} takes one objective and the study '
                    f'has several ({config.objective}): choose one of '
                    f"{', '.join(MULTI_OBJECTIVE_SAMPLERS)}")
  if sampler == 'gp' and _version('optuna') < (4, 4):   # GPSampler: several from 4.4
    raise UserError(f'--config.optuna.sampler=gp takes several objectives from Optuna 4.4 '
                    f"and this is {importlib.metadata.version('optuna')}: pip install "
                    "'optuna>=4.4', or choose nsga2 or tpe")
  if pruner not in MULTI_OBJECTIVE_PRUNERS:
    raise UserError(f'--config.optuna.pruner={pruner} judges one value and the study has '
                    f'several objectives: choose --config.optuna.pruner=successive_halving '
                    '(rungs ranked by Pareto dominance, in the program) or none')


def _version(package: str) -> tuple[int, ...]:
  """An installed package's version as numbers ('4.3.0' -> (4, 3, 0)), without importing it."""
  return tuple(int(part) for part in re.findall(r'\d+', importlib.metadata.version(package))[:3])


__all__ = ['OptunaSearch']
