"""report.md for a study: what ran, the table beside the original, figures, and one
sentence per configuration derived from its numbers; and the index of `--study=all`."""

import ast
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp import figures
from jaxmlp import metrics
from jaxmlp import results
from jaxmlp import train

# The rules behind each generated sentence (stated in every report).
OVERFIT_RISE = 0.10      # validation loss ends this much above its minimum...
OVERFIT_EARLY = 0.8      # ...reached before this fraction of the epochs
UNDERFIT_ACCURACY = 0.97  # final training accuracy below this: underfitting
CHANCE_ACCURACY = 0.2    # test accuracy below this: no better than a constant guess


def _mean_history(runs, name) -> np.ndarray:
  values = np.array([[np.nan if v is None else v for v in r['history'][name]] for r in runs])
  with np.errstate(all='ignore'):
    return np.nanmean(values, axis=0)


def describe(runs: list[dict[str, Any]]) -> str:
  """The observed pattern of one configuration, from its numbers."""
  diverged = sum(r['diverged'] for r in runs)
  if diverged:
    return (f'Diverged in {diverged} of {len(runs)} seeds: the loss became NaN or infinite.')
  test_accuracy = np.mean([r['test_accuracy'] for r in runs])
  test_loss = np.mean([r['test_loss'] for r in runs])
  train_loss, val_loss = _mean_history(runs, 'train_loss'), _mean_history(runs, 'val_loss')
  train_acc, val_acc = _mean_history(runs, 'train_accuracy'), _mean_history(runs, 'val_accuracy')
  epochs = len(val_loss)
  if test_accuracy < CHANCE_ACCURACY:
    return (f'Does not learn: test accuracy {100 * test_accuracy:.2f}%, a constant guess '
            f'(test loss {test_loss:.3g}).')
  best = int(np.argmin(val_loss))
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


def git_revision() -> str:
  here = Path(__file__).resolve().parent
  try:
    out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here, text=True,
                         capture_output=True, timeout=10)
  except (OSError, subprocess.TimeoutExpired):
    return 'unknown'
  return out.stdout.strip() if out.returncode == 0 else 'unknown (installed package)'


def _docstring(source: Path | None) -> str:
  if source is None or not source.is_file():
    return ''
  return ast.get_docstring(ast.parse(source.read_text())) or ''


def by_configuration(records) -> dict[str, list[dict[str, Any]]]:
  grouped: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    grouped.setdefault(r['label'], []).append(r)
  return grouped


def objective(runs, name: str) -> tuple[float, float]:
  """Best epoch's value per seed (as keras_tuner scores a trial), mean and std over seeds."""
  pick = np.nanmin if name.endswith('loss') else np.nanmax
  values = [pick([np.nan if v is None else v for v in r['history'][name]]) for r in runs]
  return float(np.mean(values)), float(np.std(values))


def _slug(label: str) -> str:
  return ''.join(c if c.isalnum() or c in '.=-' else '_' for c in label)


def write_report(study_dir: Path, config, records: list[dict[str, Any]], split, *,
                 command: str, source: Path | None = None) -> Path:
  run = json.loads((study_dir / 'run.json').read_text())
  grouped = by_configuration(records)
  programs = {r['program']: (r['compile_time_s'], r['fit_time_s']) for r in records}
  compile_s = sum(c for c, _ in programs.values())
  train_s = sum(t for _, t in programs.values())
  figure_dir = study_dir / 'figures'
  lines = [f'# Study `{config.name}`', '']
  doc = _docstring(source)
  if doc:
    lines += ['```', doc, '```', '']
  lines += [
      '## What ran', '',
      f'- command: `{command}`',
      f'- {len(grouped)} configurations x {run["seeds"]} seeds = {len(records)} runs, '
      f'{config.epochs} epochs each, in {len(programs)} compiled programs',
      f'- compile {compile_s:.1f} s, training and testing {train_s:.1f} s in all',
      f'- devices: {", ".join(sorted(set(run["devices"])))} ({len(run["devices"])})',
      '- versions: ' + ', '.join(f'{k} {v}' for k, v in run['versions'].items()),
      f'- git revision: {git_revision()}', '',
      '## Results beside the original', '',
      results.summary_markdown(records), '',
      '*fit time s (program)*: wall time of the compiled program that trained the '
      'configuration together with the rest of its group; the original trained one run at '
      'a time.', '']
  if len(grouped) > 1:
    lines += _ranking(grouped, config, figure_dir)
  if config.confusion_matrix:
    lines += _best_model(study_dir, grouped, config, split, figure_dir)
  lines += ['## Each configuration', '',
            f'Sentences follow fixed rules: *overfits* when validation loss ends more than '
            f'{OVERFIT_RISE:.0%} above its minimum, reached before {OVERFIT_EARLY:.0%} of the '
            f'epochs; *underfits* when final training accuracy is below '
            f'{UNDERFIT_ACCURACY:.0%}; *does not learn* below {CHANCE_ACCURACY:.0%} test '
            'accuracy.', '']
  for label, runs in grouped.items():
    runs = sorted(runs, key=lambda r: r['seed'])
    slug = _slug(label)
    title = f'{config.name}: {label}'
    curves = figures.learning_curves(runs, title, figure_dir / f'{slug}__curves.png')
    run_dir = results.member_dir_for(study_dir, runs[0])
    _, _, _, params = results.load_member(run_dir)
    violins = figures.weight_violins(params['initial'], params['final'],
                                     f'{title} (seed {runs[0]["seed"]})',
                                     figure_dir / f'{slug}__weights.png')
    accuracy = np.mean([r['test_accuracy'] or 0 for r in runs])
    ref = runs[0]['reference']
    versus = (f' Test accuracy {100 * accuracy:.2f}% against the original\'s '
              f'{100 * ref["test_accuracy"]:.2f}%.' if 'test_accuracy' in ref else '')
    lines += [f'### {label}', '', describe(runs) + versus, '',
              f'![learning curves]({curves.relative_to(study_dir)})',
              f'![weights]({violins.relative_to(study_dir)})', '']
  path = study_dir / 'report.md'
  results.write_atomic(path, '\n'.join(lines) + '\n')
  return path


def _ranking(grouped, config, figure_dir) -> list[str]:
  name = config.objective
  scores = {label: objective(runs, name) for label, runs in grouped.items()}
  labels = list(scores)
  means = np.array([scores[l][0] for l in labels])
  stds = np.array([scores[l][1] for l in labels])
  higher_better = not name.endswith('loss')
  order = sorted(labels, key=lambda l: -scores[l][0] if higher_better else scores[l][0])
  best = order[0]
  figure = figures.configurations(labels, means, stds, f'best-epoch {name}',
                                  f'{config.name}: every configuration by {name}',
                                  figure_dir / 'configurations.png', highlight=best)
  lines = ['## Ranking by ' + name, '',
           f'Each configuration is scored by its best epoch\'s {name} (as keras_tuner scores '
           f'a trial), mean ± std over seeds. Best: **{best}**.', '',
           f'![configurations]({figure.relative_to(figure_dir.parent)})', '',
           f'| rank | configuration | {name} | test accuracy % |', '|---|---|---|---|']
  for rank, label in enumerate(order, start=1):
    test = np.mean([r['test_accuracy'] or 0 for r in grouped[label]])
    lines.append(f'| {rank} | {label} | {scores[label][0]:.4f} ± {scores[label][1]:.4f} | '
                 f'{100 * test:.2f} |')
  return lines + ['']


def best_label(grouped, objective_name: str) -> str:
  sign = 1 if objective_name.endswith('loss') else -1
  return min(grouped, key=lambda l: sign * objective(grouped[l], objective_name)[0])


def _best_model(study_dir, grouped, config, split, figure_dir) -> list[str]:
  """Confusion matrix and per-class metrics of the best configuration's best seed."""
  label = best_label(grouped, config.objective)
  sign = 1 if config.objective.endswith('loss') else -1
  run = min(grouped[label], key=lambda r: sign * objective([r], config.objective)[0])
  _, structure, _, params = results.load_member(results.member_dir_for(study_dir, run))
  predicted = np.asarray(train.predict(params['final'], split.x_test, structure))
  cm = metrics.confusion_matrix(split.y_test, predicted)
  scores = metrics.precision_recall_f1(cm)
  figure = figures.confusion(
      metrics.normalize_rows(cm),
      f'{config.name}: best model on the test set\n{label} (seed {run["seed"]})',
      figure_dir / 'confusion_matrix.png')
  lines = ['## Best model on the test set', '',
           f'**{label}**, seed {run["seed"]}: accuracy {100 * scores["accuracy"]:.2f}%, '
           f'macro precision {scores["macro_precision"]:.4f}, recall '
           f'{scores["macro_recall"]:.4f}, F1 {scores["macro_f1"]:.4f}.', '',
           f'![confusion matrix]({figure.relative_to(study_dir)})', '',
           '| digit | precision | recall | F1 |', '|---|---|---|---|']
  for digit in range(10):
    lines.append(f'| {digit} | {scores["precision"][digit]:.4f} | '
                 f'{scores["recall"][digit]:.4f} | {scores["f1"][digit]:.4f} |')
  return lines + ['']


def write_index(output_dir: Path, studies: list[tuple[str, Path]], command: str) -> Path:
  """report.md over every study, in the original report's order."""
  lines = ['# Every study', '', f'- command: `{command}`', f'- git revision: {git_revision()}',
           '']
  for name, study_dir in studies:
    records = [results.read_member(d) for d in sorted((study_dir / 'members').iterdir())]
    lines += [f'## [{name}]({study_dir.relative_to(output_dir)}/report.md)', '',
              results.summary_markdown([r for r in records if r]), '']
  path = output_dir / 'report.md'
  results.write_atomic(path, '\n'.join(lines) + '\n')
  return path
