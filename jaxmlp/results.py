"""What a study leaves on disk: one JSON per member, run metadata, a summary table.

Every file is written to a temporary name and renamed, so an interrupted run
never leaves a half-written result.
"""

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from jaxmlp import study as study_lib


def write_atomic(path: Path, text: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def _finite(x):
  """JSON has no NaN or inf: a diverged number is written as null."""
  if isinstance(x, (list, tuple)):
    return [_finite(v) for v in x]
  x = float(x)
  return x if math.isfinite(x) else None


def write_json(path: Path, obj: Any) -> None:
  write_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + '\n')


def member_filename(member: study_lib.Member) -> str:
  safe = ''.join(c if c.isalnum() or c in '.=-' else '_' for c in member.label)
  return f'{safe}__seed{member.seed}.json'


def member_record(member: study_lib.Member, result, k: int,
                  reference: dict[str, Any]) -> dict[str, Any]:
  """Member k of a group's result, as the JSON a reader (or a script) wants."""
  history = {name: _finite(values[k].tolist()) for name, values in result.history.items()}
  losses = np.concatenate([result.history['train_loss'][k], result.history['val_loss'][k],
                           [result.test_loss[k]]])
  config = {f: v for f, v in member.values.items() if f not in ('arms', 'reference')}
  return dict(
      label=member.label, arm=member.arm, seed=member.seed, swept=list(member.swept),
      config=config, history=history,
      test_loss=_finite(result.test_loss[k]),
      test_accuracy=_finite(result.test_accuracy[k]),
      fit_time_s=float(result.fit_time_s[k]),
      compile_time_s=float(result.compile_time_s[k]),
      members_per_program=int(result.members_per_program[k]),
      weight_updates=int(result.weight_updates[k]),
      diverged=bool(not np.all(np.isfinite(losses))),
      reference=reference,
  )


def _mean_std(values: list[float | None]) -> str:
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


SUMMARY_COLUMNS = ('configuration', 'seeds', 'test accuracy % (mean ± std)',
                   'original accuracy %', 'test loss (mean ± std)', 'original loss',
                   'fit time s (program)', 'original fit time s', 'weight updates',
                   'diverged')


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
  """One row per configuration: mean ± std over seeds beside the original's number."""
  by_label: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    by_label.setdefault(r['label'], []).append(r)
  rows = []
  for label, runs in by_label.items():
    ref = runs[0]['reference']
    fmt = lambda key, scale=1.0, spec='g': (f'{scale * ref[key]:{spec}}' if key in ref else '')
    rows.append(dict(zip(SUMMARY_COLUMNS, (
        label, str(len(runs)),
        _percent([r['test_accuracy'] for r in runs]), fmt('test_accuracy', 100, '.2f'),
        _mean_std([r['test_loss'] for r in runs]), fmt('test_loss'),
        f"{np.mean([r['fit_time_s'] for r in runs]):.1f}", fmt('fit_time_s'),
        str(runs[0]['weight_updates']),
        str(sum(r['diverged'] for r in runs))))))
  return rows


def write_summary(study_dir: Path, records: list[dict[str, Any]]) -> str:
  """summary.csv and summary.md; returns the Markdown table."""
  rows = summary_rows(records)
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, SUMMARY_COLUMNS)
  writer.writeheader()
  writer.writerows(rows)
  write_atomic(study_dir / 'summary.csv', buffer.getvalue())
  lines = ['| ' + ' | '.join(SUMMARY_COLUMNS) + ' |',
           '|' + '---|' * len(SUMMARY_COLUMNS)]
  lines += ['| ' + ' | '.join(row[c] for c in SUMMARY_COLUMNS) + ' |' for row in rows]
  table = '\n'.join(lines) + '\n'
  write_atomic(study_dir / 'summary.md', table)
  return table
