"""A grid's part of the report: the table beside the original, the ranking by the
objective, the best model on the test set, and one sentence per configuration derived
from its numbers (with its learning curves and weights)."""

from pathlib import Path

import numpy as np

from jaxmlp.core import divergence
from jaxmlp.report import figures
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders
from jaxmlp.report import growth
from jaxmlp.report import pareto as pareto_report
from jaxmlp.report import summaries
from jaxmlp.report import test_set
from jaxmlp.studies import study as study_lib

MemberRecord = records_lib.MemberRecord

# The rules behind each generated sentence (stated in every report).
OVERFIT_RISE = 0.10      # validation loss ends this much above its minimum...
OVERFIT_EARLY = 0.8      # ...reached before this fraction of the epochs
UNDERFIT_ACCURACY = 0.97  # final training accuracy below this: underfitting
CHANCE_ACCURACY = 0.2    # test accuracy below this: no better than a constant guess

# A report stays readable, and is written in seconds, however large the study: beyond
# FIGURED configurations only the best FIGURED get their own figures and sentence (the
# rest: aggregate figures and counts), and tables list the first TABLE_ROWS rows (every
# row is in summary.csv and jaxmlp.read_results).
FIGURED = 24
TABLE_ROWS = 100


def figure_count(configurations: int) -> int:
  """The figures a grid's report draws for that many configurations (confusion aside)."""
  if configurations <= 1:
    return 2
  if configurations <= FIGURED:
    return 1 + 2 * configurations
  return 1 + 2 * FIGURED + 1


def capped(table: str, rows: int, what: str) -> str:
  """A Markdown table cut to its first `rows` rows, saying where the rest are."""
  lines = table.rstrip('\n').split('\n')
  if len(lines) - 2 <= rows:
    return table
  return '\n'.join(lines[:2 + rows]) + (f'\n\n*The first {rows} of {len(lines) - 2} '
                                       f'{what}; all are in summary.csv and '
                                       'jaxmlp.read_results.*\n')


def describe(runs: list[MemberRecord]) -> str:
  """The observed pattern of one configuration, from its numbers."""
  diverged = sum(r.diverged for r in runs)
  if diverged:
    return f'Diverged in {diverged} of {len(runs)} seeds: {divergence.RULE}.'
  test_accuracy = np.mean([r.run.test_accuracy for r in runs])
  test_loss = np.mean([r.run.test_loss for r in runs])
  train_loss, val_loss = figures.mean_series(runs, 'train_loss'), figures.mean_series(runs, 'val_loss')
  train_acc, val_acc = figures.mean_series(runs, 'train_accuracy'), figures.mean_series(runs, 'val_accuracy')
  epochs = len(val_loss)
  if test_accuracy < CHANCE_ACCURACY:
    return (f'Does not learn: test accuracy {100 * test_accuracy:.2f}%, a constant guess '
            f'(test loss {test_loss:.3g}).')
  if not np.isfinite(val_loss).any():
    return 'No finite validation loss to describe.'
  best = int(np.nanargmin(val_loss))
  rise = val_loss[-1] / val_loss[best] - 1
  if rise > OVERFIT_RISE and best < OVERFIT_EARLY * epochs:
    return (f'Overfits: validation loss is lowest at epoch {best + 1} ({val_loss[best]:.3g}) '
            f'and ends {100 * rise:.0f}% higher ({val_loss[-1]:.3g}) while training loss '
            f'falls to {train_loss[-1]:.3g}; validation accuracy ends at '
            f'{100 * val_acc[-1]:.2f}%.')
  if train_acc[-1] < UNDERFIT_ACCURACY:
    return (f'Underfits: training accuracy reaches only {100 * train_acc[-1]:.2f}% after '
            f'{epochs} epochs (validation {100 * val_acc[-1]:.2f}%), with no overfitting gap.')
  return (f'Fits without an overfitting gap: final training / validation loss '
          f'{train_loss[-1]:.3g} / {val_loss[-1]:.3g}, accuracy {100 * train_acc[-1]:.2f}% / '
          f'{100 * val_acc[-1]:.2f}%.')


def results_section(records: list[MemberRecord], config, study_dir: Path, split, *,
                    retrained: bool) -> list[str]:
  """The table beside the original, the ranking where there are several
  configurations, and the best model on the test set (unless one is retrained)."""
  grouped = summaries.by_configuration(records)
  lines = ['## Results beside the original', '',
           capped(summaries.summary_markdown(records), TABLE_ROWS, 'configurations'), '',
           '*fit time s (program)*: wall time of the compiled program that trained the '
           'configuration together with the rest of its group; the original trained one '
           'run at a time.', '']
  if len(grouped) > 1:
    lines += _ranking(grouped, config, study_dir / 'figures')
  if len(study_lib.objectives(config.objective)) > 1:
    lines += (pareto_report.section(grouped, config, study_dir)
              + growth.section(study_dir, config))
  if config.confusion_matrix and not retrained:
    label = summaries.best_label(grouped, study_lib.tracked_objective(config.objective))
    lines += test_set.best_model_section(label, grouped[label], config, split, study_dir)
  return lines


def _ranking(grouped: dict[str, list[MemberRecord]], config, figure_dir: Path) -> list[str]:
  name = study_lib.tracked_objective(config.objective)
  ranked = summaries.ranked_configurations(grouped, name)
  order = [label for label, _, _ in ranked]
  scores = {label: (mean, std) for label, mean, std in ranked}
  best = order[0]
  figure = figures.configurations(order, np.array([m for _, m, _ in ranked]),
                                  np.array([s for _, _, s in ranked]), f'best-epoch {name}',
                                  f'{config.name}: every configuration by {name}',
                                  figure_dir / 'configurations.png', highlight=best)
  lines = ['## Ranking by ' + name, '',
           f'Each configuration is scored by its best epoch\'s {name} (as keras_tuner scores '
           f'a trial), mean ± std over seeds. Best: **{best}**.', '',
           f'![configurations]({figure.relative_to(figure_dir.parent)})', '',
           f'| rank | configuration | {name} | test accuracy % |', '|---|---|---|---|']
  for rank, label in enumerate(order[:TABLE_ROWS], start=1):
    test = np.mean([r.run.test_accuracy or 0 for r in grouped[label]])
    lines.append(f'| {rank} | {label} | {scores[label][0]:.4f} ± {scores[label][1]:.4f} | '
                 f'{100 * test:.2f} |')
  if len(order) > TABLE_ROWS:
    lines += ['', f'*The best {TABLE_ROWS} of {len(order)} configurations; all are in '
              'summary.csv and jaxmlp.read_results.*']
  return lines + ['']


def each_configuration(grouped: dict[str, list[MemberRecord]], config,
                       study_dir: Path) -> list[str]:
  """Per configuration: its sentence, learning curves and weights before and after."""
  figure_dir = study_dir / 'figures'
  lines = ['## Each configuration', '',
           f'Sentences follow fixed rules: *overfits* when validation loss ends more than '
           f'{OVERFIT_RISE:.0%} above its minimum, reached before {OVERFIT_EARLY:.0%} of the '
           f'epochs; *underfits* when final training accuracy is below '
           f'{UNDERFIT_ACCURACY:.0%}; *does not learn* below {CHANCE_ACCURACY:.0%} test '
           f'accuracy; *diverged* when {divergence.RULE}.', '']
  shown = grouped
  if len(grouped) > FIGURED:
    shown, rest = _best_and_rest(grouped, study_lib.tracked_objective(config.objective))
    lines += _aggregate(grouped, rest, config, study_dir)
  for label, runs in shown.items():
    runs = sorted(runs, key=lambda r: r.seed)
    slug = folders.slug(label)
    title = f'{config.name}: {label}'
    curves = figures.learning_curves(runs, title, figure_dir / f'{slug}__curves.png')
    _, _, _, params = folders.load_member(folders.member_dir(study_dir / 'members', runs[0]))
    violins = figures.weight_violins(params['initial'], params['final'],
                                     f'{title} (seed {runs[0].seed})',
                                     figure_dir / f'{slug}__weights.png')
    accuracy = np.mean([r.run.test_accuracy or 0 for r in runs])
    ref = runs[0].run.reference
    versus = (f' Test accuracy {100 * accuracy:.2f}% against the original\'s '
              f'{100 * ref["test_accuracy"]:.2f}%.' if 'test_accuracy' in ref else '')
    lines += [f'### {label}', '', describe(runs) + versus, '',
              f'![learning curves]({curves.relative_to(study_dir)})',
              f'![weights]({violins.relative_to(study_dir)})', '']
  return lines


def _best_and_rest(grouped: dict[str, list[MemberRecord]], objective: str
                   ) -> tuple[dict[str, list[MemberRecord]], list[str]]:
  order = [label for label, _, _ in summaries.ranked_configurations(grouped, objective)]
  return {label: grouped[label] for label in order[:FIGURED]}, order[FIGURED:]


def _aggregate(grouped: dict[str, list[MemberRecord]], rest: list[str], config,
               study_dir: Path) -> list[str]:
  """All configurations' curves as one band figure, and how many of the ones without
  figures follow each pattern."""
  bands = figures.curve_bands(list(grouped.values()), f'{config.name}: every configuration',
                              study_dir / 'figures' / 'all_curves.png')
  patterns: dict[str, int] = {}
  for label in rest:
    pattern = describe(grouped[label]).split(':')[0].split(' in ')[0]
    patterns[pattern] = patterns.get(pattern, 0) + 1
  counts = ', '.join(f'{pattern.lower()}: {n}' for pattern, n in
                     sorted(patterns.items(), key=lambda kv: -kv[1]))
  return [f'{len(grouped)} configurations: the best {FIGURED} by '
          f'{study_lib.tracked_objective(config.objective)} follow, '
          f'each with its figures; the other {len(rest)} by the same rules, {counts}.', '',
          f'![every configuration]({bands.relative_to(study_dir)})', '']
