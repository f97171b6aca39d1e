"""The searches a study can run (config.search), each ending with its best configuration."""

import dataclasses
from typing import Any

import ml_collections

from jaxmlp.report import results
from jaxmlp.engine import runner
from jaxmlp.studies import study as study_lib


@dataclasses.dataclass
class Outcome:
  best: study_lib.Member                       # the best configuration (seed 0's member)
  records: list[dict[str, Any]] | None = None  # grid: every member's record
  search: Any = None                           # what the report shows of another search


def grid(config: ml_collections.ConfigDict, settings: runner.Settings,
         data: runner.DeviceData) -> Outcome:
  """Every configuration x seed; the best by the objective (mean over seeds)."""
  records = runner.run_grid(config, settings, data)
  label = results.best_label(results.by_configuration(records), config.objective)
  best = next(m for m in study_lib.expand(config, 1) if m.label == label)
  return Outcome(best, records=records)


def configurations(config: ml_collections.ConfigDict) -> list[study_lib.Member]:
  """One member per configuration the search may pick (seed 0); for Optuna, one of
  the space's points (its values are checked at the space's edges by validate)."""
  if config.search == 'optuna':
    from jaxmlp.search import optuna_search  # pylint: disable=g-import-not-at-top
    return [optuna_search.representative(config)]
  return study_lib.expand(config, 1)


def validate(config: ml_collections.ConfigDict, rows: int) -> None:
  """Refuses a search the study cannot run, before anything trains."""
  if config.search == 'hyperband':
    from jaxmlp.search import hyperband as hyperband_search  # pylint: disable=g-import-not-at-top
    hyperband_search.space_of(study_lib.expand(config, 1))
  elif config.search == 'optuna':
    from jaxmlp.search import optuna_search  # pylint: disable=g-import-not-at-top
    optuna_search.validate(config, rows)


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.DeviceData) -> Outcome | None:
  """The search's outcome; None for an Optuna worker that only searches."""
  if config.search == 'hyperband':
    from jaxmlp.search import hyperband as hyperband_search  # pylint: disable=g-import-not-at-top
    return hyperband_search.run(config, settings, data)
  if config.search == 'optuna':
    from jaxmlp.search import optuna_search  # pylint: disable=g-import-not-at-top
    return optuna_search.run(config, settings, data)
  return grid(config, settings, data)
