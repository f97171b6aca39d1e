"""report.md for a study: what ran, the table beside the original, figures, and one
sentence per configuration derived from its numbers; and the index of `--study=all`."""

import ast
import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp.report import figures
from jaxmlp.search import hyperband_oracle as hyperband
from jaxmlp.core import metrics
from jaxmlp.search import optuna_report
from jaxmlp.report import results
from jaxmlp.studies import study as study_lib
from jaxmlp.core import train

# The rules behind each generated sentence (stated in every report).
OVERFIT_RISE = 0.10      # validation loss ends this much above its minimum...
OVERFIT_EARLY = 0.8      # ...reached before this fraction of the epochs
UNDERFIT_ACCURACY = 0.97  # final training accuracy below this: underfitting
CHANCE_ACCURACY = 0.2    # test accuracy below this: no better than a constant guess


def describe(runs: list[dict[str, Any]]) -> str:
  """The observed pattern of one configuration, from its numbers."""
  diverged = sum(r['diverged'] for r in runs)
  if diverged:
    return (f'Diverged in {diverged} of {len(runs)} seeds: the loss became NaN or infinite.')
  test_accuracy = np.mean([r['test_accuracy'] for r in runs])
  test_loss = np.mean([r['test_loss'] for r in runs])
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


def write_report(study_dir: Path, config, split, *, command: str, source: Path | None = None,
                 records: list[dict[str, Any]] | None = None,
                 search=None, final: list[dict[str, Any]] | None = None) -> Path:
  """The grid's `records`, or another search's outcome (its `kind` says which); then
  the `final` retrained model."""
  kind = 'grid' if search is None else search.kind
  run = json.loads((study_dir / 'run.json').read_text())
  figure_dir = study_dir / 'figures'
  lines = [f'# Study `{config.name}`', '']
  doc = _docstring(source)
  if doc:
    lines += ['```', doc, '```', '']
  if kind == 'optuna':
    what, cost = optuna_report.what_ran(search, config)
  else:
    trained = records if kind == 'grid' else [r for t in search.trials for r in t.records]
    programs = {r['program']: (r['compile_time_s'], r['fit_time_s']) for r in trained}
    if kind == 'grid':
      grouped = results.by_configuration(records)
      epochs = study_lib.format_value(config.epochs).replace('x', ' or ')
      what = (f'exhaustive grid: {len(grouped)} configurations x {config.seeds} seeds = '
              f'{len(records)} runs, {epochs} epochs each')
    else:
      what = (f'Hyperband (keras_tuner schedule, max_epochs {config.hyperband_max_epochs}, '
              f'factor {config.hyperband_factor}, {config.hyperband_iterations} '
              f'iteration(s)): {len(search.trials)} trials x {config.seeds} executions (seeds)')
    what += f'; {len(programs)} compiled programs'
    cost = (f'{sum(r["epochs_trained"] for r in trained)} member-epochs trained in '
            f'{sum(t for _, t in programs.values()):.1f} s of training and testing, plus '
            f'{sum(c for c, _ in programs.values()):.1f} s compiling')
  lines += [
      '## What ran', '',
      f'- command: `{command}`',
      f'- search: {what}',
      f'- cost: {cost}',
      f'- devices: {", ".join(sorted(set(run["devices"])))} ({len(run["devices"])})',
      '- versions: ' + ', '.join(f'{k} {v}' for k, v in run['versions'].items()),
      f'- git revision: {git_revision()}', '']
  if kind == 'hyperband':
    lines += _hyperband(search, config, study_dir)
  elif kind == 'optuna':
    lines += optuna_report.section(search, config, study_dir)
  else:
    lines += ['## Results beside the original', '', results.summary_markdown(records), '',
              '*fit time s (program)*: wall time of the compiled program that trained the '
              'configuration together with the rest of its group; the original trained one '
              'run at a time.', '']
    if len(grouped) > 1:
      lines += _ranking(grouped, config, figure_dir)
    if config.confusion_matrix and not final:
      lines += _best_model(study_dir, grouped, config, split)
  if final:
    lines += _final(final, config, split, study_dir)
  if kind == 'grid':
    lines += _configurations(grouped, config, study_dir)
  path = study_dir / 'report.md'
  results.write_atomic(path, '\n'.join(lines) + '\n')
  return path


def _configurations(grouped, config, study_dir) -> list[str]:
  figure_dir = study_dir / 'figures'
  lines = ['## Each configuration', '',
           f'Sentences follow fixed rules: *overfits* when validation loss ends more than '
           f'{OVERFIT_RISE:.0%} above its minimum, reached before {OVERFIT_EARLY:.0%} of the '
           f'epochs; *underfits* when final training accuracy is below '
           f'{UNDERFIT_ACCURACY:.0%}; *does not learn* below {CHANCE_ACCURACY:.0%} test '
           'accuracy.', '']
  for label, runs in grouped.items():
    runs = sorted(runs, key=lambda r: r['seed'])
    slug = results.slug(label)
    title = f'{config.name}: {label}'
    curves = figures.learning_curves(runs, title, figure_dir / f'{slug}__curves.png')
    _, _, _, params = results.load_member(results.member_dir_for(study_dir / 'members',
                                                                 runs[0]))
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
  return lines


def _hyperband(search, config, study_dir) -> list[str]:
  """The schedule, every trial as keras_tuner's results_summary() lists them (a table
  and trials.csv), and a figure."""
  ranked = results.best_first(search.trials, lambda t: t.score, config.objective)
  rows = []
  for t in ranked:
    trial = t.trial
    rows.append(dict(
        trial=trial.trial_id, bracket=trial.bracket, round=trial.round,
        configuration=t.configuration.label,
        **{f: t.configuration.values[f] for f in t.configuration.swept},
        initial_epoch=trial.initial_epoch, epochs=trial.epochs,
        epochs_trained=int(np.mean([r['epochs_trained'] for r in t.records])),
        score=t.score, score_std=float(np.std([results.objective([r], config.objective)[0]
                                               for r in t.records])),
        status=t.status, continued_from=trial.parent_id or ''))
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  results.write_atomic(study_dir / 'trials.csv', buffer.getvalue())
  best = search.best
  figure = figures.configurations(
      [f'{r["trial"]} {r["configuration"]}' for r in rows], np.array([r['score'] for r in rows]),
      np.array([r['score_std'] for r in rows]), f'best-epoch {config.objective}',
      f'{config.name}: every Hyperband trial by {config.objective}',
      study_dir / 'figures' / 'trials.png',
      highlight=f'{best.trial.trial_id} {best.configuration.label}')
  schedule = hyperband.schedule(config.hyperband_max_epochs, config.hyperband_factor)
  counts: dict[tuple[int, int], int] = {}
  for t in search.trials:
    key = (t.trial.bracket, t.trial.round)
    counts[key] = counts.get(key, 0) + 1
  lines = ['## Hyperband', '',
           'keras_tuner\'s schedule, (trials, epochs) per round of each bracket: ' +
           '; '.join(f'bracket {len(schedule) - 1 - i}: ' +
                     ', '.join(f'({n}, {e})' for n, e in rounds)
                     for i, rounds in enumerate(schedule)) + '.', '',
           'Trials run, per (bracket, round): ' +
           ', '.join(f'({b}, {r}): {n}' for (b, r), n in counts.items()) +
           f'; {len(search.trials)} in all. The search ended: {search.stop_reason}.', '',
           HYPERBAND_DIFFERENCES, '',
           f'Best: **{best.configuration.label}** (trial {best.trial.trial_id}, '
           f'{config.objective} {best.score:.4f}).', '',
           f'![trials]({figure.relative_to(study_dir)})', '',
           '| trial | configuration | bracket | round | epochs | ' + config.objective +
           ' | status | continued from |', '|---|---|---|---|---|---|---|---|']
  for row in rows:
    lines.append(f"| {row['trial']} | {row['configuration']} | {row['bracket']} | "
                 f"{row['round']} | {row['initial_epoch']}-{row['epochs']} "
                 f"({row['epochs_trained']} trained) | {row['score']:.4f} ± "
                 f"{row['score_std']:.4f} | {row['status']} | {row['continued_from']} |")
  return lines + ['', 'The table is also in trials.csv.', '']


HYPERBAND_DIFFERENCES = (
    'The oracle is a port of keras_tuner 1.4.8\'s HyperbandOracle (tested against it): '
    'the same trials, values, brackets, rounds, epochs, promotions and stopping for the '
    'same seed (--config.search_seed) and scores. What differs from keras_tuner running '
    'one trial at a time: every trial the oracle can hand out before it needs a score '
    'that is not in yet (a whole round; a bracket\'s last round with the next bracket\'s '
    'first) trains at once, vmapped, grouped into programs by structure; a trial\'s '
    'executions are seeds 0..N-1 of this project rather than fresh random '
    'initializations; a continued trial\'s executions all start from its parent\'s '
    'best-epoch weights over all executions, as keras_tuner\'s single checkpoint holds '
    'them, with a fresh optimizer, and number their epochs on from the parent\'s.')


def _on_test_set(records, folder: Path, split, title: str, study_dir: Path):
  """Per seed: the saved final weights' confusion matrix and scores on the test set;
  and the first seed's normalized confusion matrix as a figure."""
  records = sorted(records, key=lambda r: r['seed'])
  matrices = []
  for record in records:
    _, structure, _, params = results.load_member(results.member_dir_for(folder, record))
    predicted = np.asarray(train.predict(params['final'], split.x_test, structure))
    matrices.append(metrics.confusion_matrix(split.y_test, predicted))
  figure = figures.confusion(metrics.normalize_rows(matrices[0]),
                             f'{title}\n{records[0]["label"]} (seed {records[0]["seed"]})',
                             study_dir / 'figures' / 'confusion_matrix.png')
  return [metrics.precision_recall_f1(cm) for cm in matrices], figure


def _mean_std(values, digits: int = 4) -> str:
  """Mean ± std over seeds, both to `digits` decimals."""
  return f'{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}'


def _per_digit(scores, figure: Path, study_dir: Path) -> list[str]:
  """The confusion matrix, then precision/recall/F1 per digit (mean ± std over seeds)."""
  cell = lambda key, digit: _mean_std([s[key][digit] for s in scores])
  lines = [f'![confusion matrix]({figure.relative_to(study_dir)})', '',
           '| digit | precision | recall | F1 |', '|---|---|---|---|']
  lines += [f'| {d} | {cell("precision", d)} | {cell("recall", d)} | {cell("f1", d)} |'
            for d in range(10)]
  return lines + ['']


def _macro(scores) -> str:
  over_seeds = lambda key: _mean_std([s[key] for s in scores])
  return (f'macro precision {over_seeds("macro_precision")}, recall '
          f'{over_seeds("macro_recall")}, F1 {over_seeds("macro_f1")}')


def _final(final, config, split, study_dir) -> list[str]:
  """The retrained best configuration on the test set, beside the original's numbers."""
  scores, figure = _on_test_set(final, study_dir / 'final', split,
                                f'{config.name}: final model on the test set', study_dir)
  cfg, ref = final[0]['config'], config.final_reference
  accuracy = [100 * s['accuracy'] for s in scores]
  lines = ['## Final model', '',
           f'**{final[0]["label"]}** retrained {config.final_epochs} epochs at batch '
           f'{cfg["batch_size"]}{", shuffled" if cfg["shuffle"] else ""}, {len(final)} '
           f'seeds: test accuracy {_mean_std(accuracy, 2)}%' +
           (f' (original, {ref.configuration}: {100 * ref.test_accuracy:.2f}%, F1 '
            f'{ref.test_f1:.4f})' if 'test_accuracy' in ref else '') +
           f'; {_macro(scores)}.', '']
  return (lines + _per_digit(scores, figure, study_dir) +
          ['Models saved in final/ (python -m jaxmlp.evaluate --run=...).', ''])


def _ranking(grouped, config, figure_dir) -> list[str]:
  name = config.objective
  ranked = results.ranked_configurations(grouped, name)
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
  for rank, label in enumerate(order, start=1):
    test = np.mean([r['test_accuracy'] or 0 for r in grouped[label]])
    lines.append(f'| {rank} | {label} | {scores[label][0]:.4f} ± {scores[label][1]:.4f} | '
                 f'{100 * test:.2f} |')
  return lines + ['']


def _best_model(study_dir, grouped, config, split) -> list[str]:
  """Confusion matrix and per-class metrics of the best configuration, every seed."""
  label = results.best_label(grouped, config.objective)
  scores, figure = _on_test_set(grouped[label], study_dir / 'members', split,
                                f'{config.name}: best model on the test set', study_dir)
  accuracy = [100 * s['accuracy'] for s in scores]
  return (['## Best model on the test set', '',
           f'**{label}**, {len(scores)} seeds: accuracy {_mean_std(accuracy, 2)}%, '
           f'{_macro(scores)}.', ''] +
          _per_digit(scores, figure, study_dir))


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
