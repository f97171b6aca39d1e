"""--search=optuna: Optuna's samplers and pruners fill the slots of compiled programs.

_study holds what is Optuna's (the study, its storage, its samplers and pruners);
_space maps a study's distributions to Optuna's; _worker fills and refills the slots;
_search runs a worker and gathers its outcome; _report is its part of the report.
They import Optuna (a second to import) when the search runs, not for --help.
"""

import ml_collections

from jaxmlp.common import numbers
from jaxmlp.search import base
from jaxmlp.studies import study as study_lib

SAMPLERS = ('tpe', 'random', 'cmaes', 'qmc')
PRUNERS = ('none', 'median', 'successive_halving', 'hyperband')


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


__all__ = ['OptunaSearch']
