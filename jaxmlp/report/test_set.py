"""Saved models on the test set: confusion matrix and per-digit scores over seeds, for
the final retrained model and for a grid's best configuration."""

from pathlib import Path

import numpy as np

from jaxmlp.core import metrics
from jaxmlp.core import train
from jaxmlp.report import figures
from jaxmlp.store import records as records_lib
from jaxmlp.store import folders

MemberRecord = records_lib.MemberRecord


def _on_test_set(records: list[MemberRecord], folder: Path, split, title: str,
                 study_dir: Path):
  """Per seed: the saved final weights' confusion matrix and scores on the test set;
  and the first seed's normalized confusion matrix as a figure."""
  records = sorted(records, key=lambda r: r.seed)
  matrices = []
  for record in records:
    _, structure, _, params = folders.load_member(folders.member_dir(folder, record))
    predicted = np.asarray(train.predict(params['final'], split.x_test, structure))
    matrices.append(metrics.confusion_matrix(split.y_test, predicted))
  figure = figures.confusion(metrics.normalize_rows(matrices[0]),
                             f'{title}\n{records[0].label} (seed {records[0].seed})',
                             study_dir / 'figures' / 'confusion_matrix.png')
  return [metrics.precision_recall_f1(cm) for cm in matrices], figure


def _over_seeds(values, digits: int = 4) -> str:
  """Mean ± std over seeds, both to `digits` decimals."""
  return f'{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}'


def _per_digit(scores, figure: Path, study_dir: Path) -> list[str]:
  """The confusion matrix, then precision/recall/F1 per digit (mean ± std over seeds)."""
  cell = lambda key, digit: _over_seeds([s[key][digit] for s in scores])
  lines = [f'![confusion matrix]({figure.relative_to(study_dir)})', '',
           '| digit | precision | recall | F1 |', '|---|---|---|---|']
  lines += [f'| {d} | {cell("precision", d)} | {cell("recall", d)} | {cell("f1", d)} |'
            for d in range(10)]
  return lines + ['']


def _macro(scores) -> str:
  over_seeds = lambda key: _over_seeds([s[key] for s in scores])
  return (f'macro precision {over_seeds("macro_precision")}, recall '
          f'{over_seeds("macro_recall")}, F1 {over_seeds("macro_f1")}')


def final_model_section(model: records_lib.FinalModel, config, split, study_dir: Path) -> list[str]:
  """The final model on the test set, beside the original's numbers (several: a Pareto
  front's, one row each)."""
  final = model.records
  if len({r.label for r in final}) > 1:
    return _front_section(model, config, split, study_dir)
  scores, figure = _on_test_set(final, study_dir / model.folder, split,
                                f'{config.name}: final model on the test set', study_dir)
  ref = config.final_reference
  accuracy = [100 * s['accuracy'] for s in scores]
  seeds = f'{len(final)} seed{"s" if len(final) > 1 else ""}'
  lines = ['## Final model', '',
           f'**{final[0].label}** {model.how}, {seeds}: test accuracy '
           f'{_over_seeds(accuracy, 2)}%' +
           (f' (original, {ref.configuration}: {100 * ref.test_accuracy:.2f}%, F1 '
            f'{ref.test_f1:.4f})' if 'test_accuracy' in ref else '') +
           f'; {_macro(scores)}.', '']
  return (lines + _per_digit(scores, figure, study_dir) +
          [f'Models saved in {model.folder}/ (python -m jaxmlp.evaluate --run=...).', ''])


def best_model_section(label: str, runs: list[MemberRecord], config, split,
                       study_dir: Path) -> list[str]:
  """Confusion matrix and per-class metrics of the best configuration, every seed."""
  scores, figure = _on_test_set(runs, study_dir / 'members', split,
                                f'{config.name}: best model on the test set', study_dir)
  accuracy = [100 * s['accuracy'] for s in scores]
  return (['## Best model on the test set', '',
           f'**{label}**, {len(scores)} seeds: accuracy {_over_seeds(accuracy, 2)}%, '
           f'{_macro(scores)}.', ''] +
          _per_digit(scores, figure, study_dir))


def _front_section(model: records_lib.FinalModel, config, split, study_dir: Path
                   ) -> list[str]:
  """A front's final models: each configuration's test scores over its seeds, its
  costs, beside the original's final model."""
  from jaxmlp.core import costs   # pylint: disable=import-outside-toplevel
  by_label: dict[str, list[MemberRecord]] = {}
  for r in model.records:
    by_label.setdefault(r.label, []).append(r)
  ref = config.final_reference
  lines = ['## Final models: the Pareto front', '',
           f'{model.how[:1].upper()}{model.how[1:]}'
           + (f' (original, {ref.configuration}: {100 * ref.test_accuracy:.2f}%, F1 '
              f'{ref.test_f1:.4f})' if 'test_accuracy' in ref else '') + '.', '',
           '| configuration | parameters | test accuracy % | macro F1 |', '|---|---|---|---|']
  for label, records in by_label.items():
    scores, _ = _on_test_set(records, study_dir / model.folder, split,
                             f'{config.name}: {label} on the test set', study_dir)
    size = costs.parameter_count(records[0].config['hidden_sizes'])
    lines.append(f'| {label} | {size:,} | '
                 f'{_over_seeds([100 * s["accuracy"] for s in scores], 2)} | '
                 f'{_over_seeds([s["macro_f1"] for s in scores])} |')
  return lines + ['', f'Models saved in {model.folder}/ (python -m jaxmlp.evaluate '
                  '--run=...).', '']
