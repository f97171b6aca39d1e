"""--search=hyperband: keras_tuner's Hyperband, each round's trials trained together.

_oracle ports keras_tuner's HyperbandOracle (its brackets: _schedule; its Choice draws:
_choice; its saved state: _state); _search runs the trials it hands out; _report is
its part of the study's report (and trials.csv, which read_results' columns use).
Those are imported when the search runs, so --help stays fast.
"""

import csv
from pathlib import Path

import ml_collections

from jaxmlp.search import base
from jaxmlp.studies import checks
from jaxmlp.studies import study as study_lib

TRIALS_FILE = 'trials.csv'


class HyperbandSearch(base.Search):
  name = 'hyperband'
  help = ("keras_tuner's Hyperband over the configurations (the original's finetune "
          'search), each round trained at once.')
  settings = (
      base.Setting('max_epochs', 50, "keras_tuner's max_epochs", base.whole(1),
                   legacy='hyperband_max_epochs'),
      base.Setting('factor', 3, 'its reduction factor', base.whole(2),
                   legacy='hyperband_factor'),
      base.Setting('iterations', 1, 'its hyperband_iterations', base.whole(1),
                   legacy='hyperband_iterations'),
  )

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    from jaxmlp.search.hyperband import _search  # pylint: disable=import-outside-toplevel
    checks.check_members(study_lib.expand(config, 1), rows)   # seeds share their values
    _search.space_of(study_lib.expand(config, 1))

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    return study_lib.expand(config, 1)

  def planned_members(self, config: ml_collections.ConfigDict):
    """Every round's trials of every bracket and iteration, each of `seeds` executions."""
    from jaxmlp.search.hyperband import _schedule  # pylint: disable=import-outside-toplevel
    section = config.hyperband
    rounds = _schedule.schedule(section.max_epochs, section.factor)
    trials = section.iterations * sum(size for bracket in rounds for size, _ in bracket)
    return base.largest_of(self.configurations(config), trials * config.seeds)

  def run(self, config, settings, data):
    from jaxmlp.search.hyperband import _search  # pylint: disable=import-outside-toplevel
    return _search.run(config, settings, data)

  def frame_columns(self, study_dir: Path):
    """A trial's id (its label starts with 'trial-0003:'), bracket and round (from
    trials.csv)."""
    path = Path(study_dir) / TRIALS_FILE
    placed = {}
    if path.is_file():
      with path.open(newline='') as f:
        placed = {int(row['trial']): {'bracket': int(row['bracket']),
                                      'round': int(row['round'])}
                  for row in csv.DictReader(f)}

    def columns(role, record):
      head, colon, _ = record.label.partition(':')
      if role != 'trial' or record.trial is not None or not colon or (
          not head.startswith('trial-')):
        return {}
      trial_id = int(head.removeprefix('trial-'))
      return dict(trial_id=trial_id, **placed.get(trial_id, {}))
    return columns


__all__ = ['HyperbandSearch']
