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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

from jaxmlp.studies import study as study_lib
from jaxmlp.errors import UserError


RESULT_FILE = 'result.json'
PARAMS_FILE = 'params.msgpack'


def write_atomic(path: Path, content: str | bytes) -> None:
  if jax.process_index() != 0:
    return  # on several hosts, every host holds every result; one writes them
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb' if isinstance(content, bytes) else 'w') as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def finite(x):
  """JSON has no NaN or inf: a diverged number is written as null."""
  if isinstance(x, (list, tuple)):
    return [finite(v) for v in x]
  x = float(x)
  return x if math.isfinite(x) else None


def write_json(path: Path, obj: Any) -> None:
  write_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + '\n')


def member_dir(folder: Path, member: study_lib.Member) -> Path:
  return member_dir_for(folder, dict(label=member.label, seed=member.seed))


def slug(label: str) -> str:
  """A configuration's label as a file name."""
  return ''.join(c if c.isalnum() or c in '.=-' else '_' for c in label)


def member_dir_for(folder: Path, record: dict[str, Any]) -> Path:
  """A member's own folder inside `folder` (STUDY/members, STUDY/trials, STUDY/final)."""
  return folder / f'{slug(record["label"])}__seed{record["seed"]}'


def write_member(directory: Path, record: dict[str, Any], weights: dict[str, Any]) -> None:
  """The parameters first, the result last: a result.json means the member is complete.

  params.msgpack holds {'initial', 'final', 'best'}: each a Flax params dict.
  """
  write_atomic(directory / PARAMS_FILE, flax.serialization.msgpack_serialize(weights))
  write_json(directory / RESULT_FILE, record)


def read_member(directory: Path) -> dict[str, Any] | None:
  """A finished member's record, or None if it has not finished."""
  path = directory / RESULT_FILE
  return json.loads(path.read_text()) if path.is_file() else None


def load_params(directory: Path) -> dict[str, Any]:
  """{'initial': params, 'final': params, 'best': params} of a finished member."""
  return flax.serialization.msgpack_restore((directory / PARAMS_FILE).read_bytes())


def member_of(record: dict[str, Any]) -> study_lib.Member:
  """The member a record was trained as."""
  return study_lib.Member(record['label'], record['arm'], record['seed'],
                          {**study_lib.baseline(), **record['config']},
                          tuple(record['swept']))


def load_member(directory: Path):
  """(record, structure, hparams, {'initial': params, 'final': params, ...}) of a member."""
  record = read_member(directory)
  if record is None or not (directory / PARAMS_FILE).is_file():
    raise UserError(f'{directory} holds no finished member: pass OUTPUT_DIR/STUDY/members/'
                    'NAME (a folder with result.json and params.msgpack)')
  member = member_of(record)
  hparams = {k: np.float32(v) for k, v in member.hparams.items()}
  return record, member.structure, hparams, load_params(directory)


# What a member's record keeps of its config: enough to rebuild and evaluate it.
RECORD_FIELDS = study_lib.MEMBER_FIELDS + ('objective', 'validation_split')


def member_record(member: study_lib.Member, result, k: int, reference: dict[str, Any],
                  program: str = '0', initial_epoch: int = 0) -> dict[str, Any]:
  """Member k of a program's result, as the JSON a reader (or a script) wants.

  A continued (Hyperband) trial's history, best epoch and weights count from its own
  start; `initial_epoch` says where in its lineage that start was.
  """
  trained = int(result.epochs_trained[k])
  history = {name: finite(values[k, :trained].tolist())
             for name, values in result.history.items()}
  losses = np.concatenate([result.history['train_loss'][k, :trained],
                           result.history['val_loss'][k, :trained], [result.test_loss[k]]])
  best = int(result.best_epoch[k])
  return dict(
      label=member.label, arm=member.arm, seed=member.seed, swept=list(member.swept),
      config={f: member.values[f] for f in RECORD_FIELDS},
      history=history,
      test_loss=finite(result.test_loss[k]),
      test_accuracy=finite(result.test_accuracy[k]),
      test_f1=finite(result.test_f1[k]),
      epochs_trained=trained,
      initial_epoch=initial_epoch,
      best_epoch=best + 1 if best >= 0 else None,
      fit_time_s=float(result.fit_time_s[k]),
      compile_time_s=float(result.compile_time_s[k]),
      members_per_program=int(result.members_per_program[k]),
      program=program,
      weight_updates=int(result.weight_updates[k]),
      diverged=bool(not np.all(np.isfinite(losses))),
      reference=reference,
  )


def objective(runs, name: str) -> tuple[float, float]:
  """Best epoch's value per seed (as keras_tuner scores a trial), mean and std over seeds."""
  pick = np.nanmin if name.endswith('loss') else np.nanmax
  values = [pick([np.nan if v is None else v for v in r['history'][name]]) for r in runs]
  return float(np.mean(values)), float(np.std(values))


def by_configuration(records) -> dict[str, list[dict[str, Any]]]:
  """The records of each configuration (its seeds), in the order first seen."""
  grouped: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    grouped.setdefault(r['label'], []).append(r)
  return grouped


def ranked_configurations(grouped, name: str) -> list[tuple[str, float, float]]:
  """(label, mean, std) of each configuration's objective, best first, NaN last."""
  scores = [(label, *objective(runs, name)) for label, runs in grouped.items()]
  return best_first(scores, lambda s: s[1], name)


def best_label(grouped, objective_name: str) -> str:
  return ranked_configurations(grouped, objective_name)[0][0]


def best_first(items: list, score: Callable[[Any], float], name: str) -> list:
  """`items` by their `score` of objective `name`, best first (lowest for a loss);
  a NaN score (a diverged run) ranks last; ties keep their order."""
  sign = 1 if name.endswith('loss') else -1
  return sorted(items, key=lambda item: (math.isnan(score(item)),
                                         sign * np.nan_to_num(score(item))))


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


def _span(values: list[int]) -> str:
  """One number, or the range where seeds differ (an early stop)."""
  low, high = min(values), max(values)
  return str(low) if low == high else f'{low}-{high}'


SUMMARY_COLUMNS = ('configuration', 'seeds', 'test accuracy % (mean ± std)',
                   'original accuracy %', 'test loss (mean ± std)', 'original loss',
                   'fit time s (program)', 'original fit time s', 'weight updates',
                   'diverged')


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, str]]:
  """One row per configuration: mean ± std over seeds beside the original's number."""
  rows = []
  for label, runs in by_configuration(records).items():
    ref = runs[0]['reference']
    fmt = lambda key, scale=1.0, spec='g': (f'{scale * ref[key]:{spec}}' if key in ref else '')
    rows.append(dict(zip(SUMMARY_COLUMNS, (
        label, str(len(runs)),
        _percent([r['test_accuracy'] for r in runs]), fmt('test_accuracy', 100, '.2f'),
        _mean_std([r['test_loss'] for r in runs]), fmt('test_loss'),
        f"{np.mean([r['fit_time_s'] for r in runs]):.1f}", fmt('fit_time_s'),
        _span([r['weight_updates'] for r in runs]),
        str(sum(r['diverged'] for r in runs))))))
  return rows


def summary_markdown(records: list[dict[str, Any]]) -> str:
  lines = ['| ' + ' | '.join(SUMMARY_COLUMNS) + ' |',
           '|' + '---|' * len(SUMMARY_COLUMNS)]
  lines += ['| ' + ' | '.join(row[c] for c in SUMMARY_COLUMNS) + ' |'
            for row in summary_rows(records)]
  return '\n'.join(lines) + '\n'


def write_summary(study_dir: Path, records: list[dict[str, Any]]) -> str:
  """summary.csv and summary.md; returns the Markdown table."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, SUMMARY_COLUMNS)
  writer.writeheader()
  writer.writerows(summary_rows(records))
  write_atomic(study_dir / 'summary.csv', buffer.getvalue())
  table = summary_markdown(records)
  write_atomic(study_dir / 'summary.md', table)
  return table
