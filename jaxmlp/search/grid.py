"""--search=grid: every configuration x seed of the study; the best by the objective
(mean over seeds)."""

import dataclasses
from pathlib import Path

import ml_collections

from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import runner
from jaxmlp.store import records as records_lib
from jaxmlp.report import summaries
from jaxmlp.search import base
from jaxmlp.studies import checks
from jaxmlp.studies import study as study_lib


@dataclasses.dataclass
class GridOutcome(base.Outcome):
  best: study_lib.Member
  records: list[records_lib.MemberRecord]

  @property
  def grouped(self) -> dict[str, list[records_lib.MemberRecord]]:
    return summaries.by_configuration(self.records)

  def what_ran(self, config: ml_collections.ConfigDict) -> tuple[str, str]:
    epochs = study_lib.format_value(config.epochs).replace('x', ' or ')
    what = (f'exhaustive grid: {len(self.grouped)} configurations x {config.seeds} seeds = '
            f'{len(self.records)} runs, {epochs} epochs each')
    return summaries.with_program_costs(what, self.records)

  def report_section(self, config: ml_collections.ConfigDict, study_dir: Path,
                     split: data_lib.Split, *, retrained: bool) -> list[str]:
    from jaxmlp.report import configurations as configurations_report  # pylint: disable=import-outside-toplevel
    return configurations_report.results_section(self.records, config, study_dir, split,
                                                 retrained=retrained)

  def report_appendix(self, config: ml_collections.ConfigDict, study_dir: Path
                      ) -> list[str]:
    # Plotting is imported when a report is written, not when --help lists searches.
    from jaxmlp.report import configurations as configurations_report  # pylint: disable=import-outside-toplevel
    return configurations_report.each_configuration(self.grouped, config, study_dir)

  def write_summary(self, study_dir: Path) -> str:
    return summaries.write_summary(study_dir, self.records)

  def front_candidates(self, config: ml_collections.ConfigDict):
    members = {m.label: m for m in study_lib.expand(config, 1)}
    return {label: (members[label], records) for label, records in self.grouped.items()}


class GridSearch(base.Search):
  name = 'grid'
  help = 'every configuration x seed (the default).'

  def adds_work(self, field: str, old, new) -> bool:
    """More seeds, more values on a sweep axis, every arm after one, a new arm."""
    name = field.rsplit('.', 1)[-1]
    if field == 'seeds':
      return new >= old
    if field == 'arm':
      return new == ''
    if field.startswith('arms.') and old is None:
      return True
    if name in study_lib.MEMBER_FIELDS and old is not None and new is not None:
      return set(study_lib.axis_values(name, old)) <= set(study_lib.axis_values(name, new))
    return False

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    checks.check_members(study_lib.expand(config, 1), rows)   # seeds share their values

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    return study_lib.expand(config, 1)

  def run(self, config: ml_collections.ConfigDict, settings: runner.Settings,
          data: runner.LazyDeviceData) -> GridOutcome:
    records = runner.run_grid(config, settings, data)
    label = summaries.best_label(summaries.by_configuration(records),
                                 study_lib.tracked_objective(config.objective))
    best = next(m for m in study_lib.expand(config, 1) if m.label == label)
    return GridOutcome(best, records)
