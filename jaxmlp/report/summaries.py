"""Records summed up per configuration: its objective score over seeds, the ranking,
and the summary table beside the original (summary.csv, summary.md)."""

import csv
import io
from pathlib import Path

import numpy as np

from jaxmlp.core import objective as objective_lib
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders

MemberRecord = records_lib.MemberRecord


def score(runs: list[MemberRecord], objective: str) -> tuple[float, float]:
  """Best epoch's value per seed (as keras_tuner scores a trial), mean and std over seeds."""
  values = [r.objective_value(objective) for r in runs]
  return float(np.mean(values)), float(np.std(values))


def by_configuration(records: list[MemberRecord]) -> dict[str, list[MemberRecord]]:
  """The records of each configuration (its seeds), in the order first seen."""
  grouped: dict[str, list[MemberRecord]] = {}
  for r in records:
    grouped.setdefault(r.label, []).append(r)
  return grouped


def ranked_configurations(grouped: dict[str, list[MemberRecord]], objective: str
                          ) -> list[tuple[str, float, float]]:
  """(label, mean, std) of each configuration's objective, best first, NaN last."""
  scores = [(label, *score(runs, objective)) for label, runs in grouped.items()]
  return objective_lib.Objective.of(objective).best_first(scores, lambda s: s[1])


def best_label(grouped: dict[str, list[MemberRecord]], objective: str) -> str:
  return ranked_configurations(grouped, objective)[0][0]


def _loss_over_seeds(values: list[float | None]) -> str:
  """Mean ± std of the finite values, 4 and 2 significant digits."""
  values = [v for v in values if v is not None]
  if not values:
    return 'diverged'
  mean, std = float(np.mean(values)), float(np.std(values))
  return f'{mean:.4g} ± {std:.2g}'


def _percent(values: list[float | None]) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return 'diverged'
  return f'{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}'


def _span(values: list[int]) -> str:
  """One number, or the range where seeds differ (an early stop)."""
  low, high = min(values), max(values)
  return str(low) if low == high else f'{low}-{high}'


SUMMARY_COLUMNS = ('configuration', 'seeds', 'test accuracy % (mean ± std)',
                   'original accuracy %', 'test loss (mean ± std)', 'original loss',
                   'fit time s (program)', 'original fit time s', 'weight updates',
                   'diverged')


def summary_rows(records: list[MemberRecord]) -> list[dict[str, str]]:
  """One row per configuration: mean ± std over seeds beside the original's number."""
  rows = []
  for label, runs in by_configuration(records).items():
    ref = runs[0].run.reference
    fmt = lambda key, scale=1.0, spec='g': (f'{scale * ref[key]:{spec}}' if key in ref else '')
    rows.append(dict(zip(SUMMARY_COLUMNS, (
        label, str(len(runs)),
        _percent([r.run.test_accuracy for r in runs]), fmt('test_accuracy', 100, '.2f'),
        _loss_over_seeds([r.run.test_loss for r in runs]), fmt('test_loss'),
        f'{np.mean([r.run.fit_time_s for r in runs]):.1f}', fmt('fit_time_s'),
        _span([r.run.weight_updates for r in runs]),
        str(sum(r.diverged for r in runs))))))
  return rows


def summary_markdown(records: list[MemberRecord]) -> str:
  lines = ['| ' + ' | '.join(SUMMARY_COLUMNS) + ' |',
           '|' + '---|' * len(SUMMARY_COLUMNS)]
  lines += ['| ' + ' | '.join(row[c] for c in SUMMARY_COLUMNS) + ' |'
            for row in summary_rows(records)]
  return '\n'.join(lines) + '\n'


def write_summary(study_dir: Path, records: list[MemberRecord]) -> str:
  """summary.csv and summary.md; returns the Markdown table."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, SUMMARY_COLUMNS)
  writer.writeheader()
  writer.writerows(summary_rows(records))
  folders.write_atomic(study_dir / 'summary.csv', buffer.getvalue())
  table = summary_markdown(records)
  folders.write_atomic(study_dir / 'summary.md', table)
  return table


def with_program_costs(what: str, records: list[MemberRecord]) -> tuple[str, str]:
  """The 'What ran' lines of members trained in programs: `what` and the programs
  that ran, and what they cost."""
  programs = {r.run.program: (r.run.compile_time_s, r.run.fit_time_s) for r in records}
  what += f'; {len(programs)} compiled programs'
  cost = (f'{sum(r.epochs_trained for r in records)} member-epochs trained in '
          f'{sum(t for _, t in programs.values()):.1f} s of training and testing, plus '
          f'{sum(c for c, _ in programs.values()):.1f} s compiling')
  return what, cost
