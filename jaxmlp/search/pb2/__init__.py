"""--search=pb2: population-based bandits (Parker-Holder et al. 2020, "Provably
Efficient Online Hyperparameter Optimization with Population-Based Bandits"; Ray
Tune's PB2 is the reference), inside one compiled program.

PBT's population, program and exploit (the bottom quantile copies the weights,
optimizer state and tracker of a donor drawn from the top, in one jitted gather), with
another explore: a copy's new hyperparameters maximize the upper confidence bound of
a time-varying Gaussian process fitted on every interval the population trained
(which values raised the score how fast), within the space's bounds, instead of
random perturbation. _explore rebuilds those data from the population's arrays and
decides; _gp_ucb is the bandit. Lineage, files, report and replay are PBT's.
"""

import dataclasses

import ml_collections

from jaxmlp.common.errors import UserError
from jaxmlp.search.pbt import INTERVAL, POPULATION, QUANTILE, PBTSearch


class PB2Search(PBTSearch):
  name = 'pb2'
  help = ('population-based bandits: PBT whose copies explore by a GP-UCB bandit '
          "(Ray Tune's PB2), in one compiled program.")
  settings = tuple(dataclasses.replace(s, legacy='') for s in (POPULATION, INTERVAL, QUANTILE))

  def pbt_config(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """PBT's modules read config.pbt.*: this search's section, with no random
    resampling or perturbation (the bandit explores)."""
    config = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
    config.pbt = ml_collections.ConfigDict(
        dict(config.pb2, resample=0.0, factors=(1.0,)), type_safe=False)
    return config

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    super().validate_config(config, rows)
    for d in self.dimensions(config):
      if d.choices:
        raise UserError(f'--config.{d.field} is a set of choices, but --search=pb2 explores '
                        'ranges (as Ray\'s PB2 does): give it a distribution, e.g. '
                        f"--config.{d.field}='loguniform(1e-4, 1e-1)'")

  def explore(self, config, population, scores_M, generation) -> list:
    """PBT's exploits, each target's values then chosen by the bandit."""
    from jaxmlp.search.pb2 import _explore  # pylint: disable=import-outside-toplevel
    exploits = super().explore(config, population, scores_M, generation)
    initial_MF = self.first_values(config, population.dims)
    return _explore.decide(population, scores_M, generation, initial_MF, exploits)


__all__ = ['PB2Search']
