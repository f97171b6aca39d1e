"""--search=pbt: population-based training inside one compiled program; and
--search=pbt_replay: a PBT winner's schedule retrained alone.

_rules decides (the space, the first population, who copies whom, how a copy
explores); _evolve changes the program's members between epochs; _files writes
pbt.json and the lineage; _search runs the population; _replay retrains a schedule;
_report and _figures are its part of the report. They are imported when the search
runs, so --help stays fast.

Another search that evolves a population in one program (PB2) subclasses PBTSearch
and overrides `explore`, the one decision it makes differently.
"""

import ml_collections

from jaxmlp.search import base
from jaxmlp.store import records as records_lib
from jaxmlp.studies import study as study_lib

# Ray Tune's PopulationBasedTraining defaults, shared by the searches built on it.
# One program holds the population: beyond this no device holds it, and drawing its
# starting points would take the check minutes.
MOST_MEMBERS = 100_000
POPULATION = base.Setting('population', 16, 'members trained together in one program',
                          base.whole(2, MOST_MEMBERS), legacy='pbt_population')
INTERVAL = base.Setting('interval', 5, 'epochs between two exploits', base.whole(1),
                        legacy='pbt_interval')
QUANTILE = base.Setting('quantile', 0.25, "the bottom fraction that copies the top's "
                        'weights, optimizer state and tracker (ceil(n*q), at most n/2; 0: '
                        'plain training)', base.number_in(0, 0.5), legacy='pbt_quantile')


class PBTSearch(base.Search):
  name = 'pbt'
  help = 'population-based training of a population in one compiled program.'
  settings = (
      POPULATION, INTERVAL, QUANTILE,
      base.Setting('resample', 0.25, 'the probability that a copy resamples a '
                   'hyperparameter from the space, else scales it', base.number_in(0, 1),
                   legacy='pbt_resample'),
      base.Setting('factors', (0.8, 1.2), 'the factors it scales by (kept inside the '
                   'space)', base.positive_numbers, legacy='pbt_factors'),
  )

  def explore(self, config: ml_collections.ConfigDict, population, scores_M, generation
              ) -> list:
    """A generation's exploits, [(target, donor, the target's new values)]: PBT's
    quantiles, random donors and Ray's perturbation (_rules.decide)."""
    from jaxmlp.search.pbt import _rules  # pylint: disable=import-outside-toplevel
    return _rules.decide(scores_M, population.values_MF, population.dims, config,
                         generation, population.violation_M)

  def dimensions(self, config: ml_collections.ConfigDict) -> list:
    """The explored hyperparameters, each a range (low, high, log) or choices."""
    from jaxmlp.search.pbt import _rules  # pylint: disable=import-outside-toplevel
    return _rules.dimensions(config)[1]

  def first_values(self, config: ml_collections.ConfigDict, dims: list):
    """(population, F) float32: each member's first values (from search_seed)."""
    from jaxmlp.search.pbt import _rules  # pylint: disable=import-outside-toplevel
    return _rules.first_population(config.pbt.population, dims, config.search_seed)

  def pbt_config(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config PBT's modules read (config.pbt.*): this search's own."""
    return config

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    from jaxmlp.search.pbt import _search  # pylint: disable=import-outside-toplevel
    _search.validate(self.pbt_config(config), rows)

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    """The space's two corners (what a final model may be retrained with)."""
    from jaxmlp.search.pbt import _search  # pylint: disable=import-outside-toplevel
    return _search.configurations(self.pbt_config(config))

  def planned_members(self, config: ml_collections.ConfigDict):
    return base.largest_of(self.configurations(config), config[self.name].population)

  def program_demands(self, config: ml_collections.ConfigDict) -> list[base.Demand]:
    """One program holding the whole population."""
    from jaxmlp.search.pbt import _search  # pylint: disable=import-outside-toplevel
    return [demand._replace(flag=f'{self.name}.population') for demand in
            _search.program_demands(self.pbt_config(config))]

  def run(self, config, settings, data):
    from jaxmlp.search.pbt import _search  # pylint: disable=import-outside-toplevel
    config = self.pbt_config(config)
    return _search.run(config, settings, data,
                       lambda p, scores_M, g: self.explore(config, p, scores_M, g))

  def final_model(self, config, settings, data, outcome):
    """The winner as trained (its weights, test scores and schedule: nothing is
    retrained); with final_epochs > 0, its schedule retrained as the config says (at
    final_batch_size), into final/."""
    return _final_model(self.pbt_config(config), settings, data, outcome)


class ReplaySearch(base.Search):
  name = 'pbt_replay'
  help = ("the winner's schedule of --config.pbt_replay.study=STUDY_DIR (a PBT study), "
          'retrained alone.')
  settings = (base.Setting('study', '', 'the PBT study folder whose winner is replayed',
                           base.text, legacy='pbt_replay'),)

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    from jaxmlp.search.pbt import _replay  # pylint: disable=import-outside-toplevel
    _replay.validate(config, rows)

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    from jaxmlp.search.pbt import _replay  # pylint: disable=import-outside-toplevel
    return _replay.configurations(config)

  def planned_members(self, config: ml_collections.ConfigDict):
    return base.largest_of(self.configurations(config), 1)

  def run(self, config, settings, data):
    from jaxmlp.search.pbt import _replay  # pylint: disable=import-outside-toplevel
    return _replay.run(config, settings, data)

  def final_model(self, config, settings, data, outcome):
    """With final_epochs > 0, the winner's schedule retrained as the config says."""
    return _final_model(config, settings, data, outcome) if config.final_epochs else None


def _final_model(config, settings, data, outcome) -> records_lib.FinalModel:
  from jaxmlp.search.pbt import _replay  # pylint: disable=import-outside-toplevel
  if config.final_epochs:
    records = _replay.retrain_final(config, settings, data, outcome.best, outcome.pbt)
    return records_lib.FinalModel(records, 'final', base.retrained_how(
        config, "its schedule of hyperparameters retrained"))
  winner = outcome.pbt['winner']
  record, = [r for r in outcome.records if r.label == f'member={winner}']
  return records_lib.FinalModel([record], 'members', 'the winner as trained (nothing '
                                  'retrained; its schedule is in pbt.json)')


__all__ = ['PBTSearch', 'ReplaySearch']
