"""What a study leaves on disk: each member's folder (result.json, params.msgpack),
and run metadata.

Every file is written to a temporary name and renamed, so an interrupted run
never leaves a half-written result, and a write that fails (a full disk, a read-only
folder) leaves the previous file as it was and stops the run with one line. A file
that cannot be read back (damaged on disk) is named, with how to regenerate it.
"""

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

from jaxmlp.common import numbers
from jaxmlp.store import records
from jaxmlp.store import schema
from jaxmlp.studies import study as study_lib
from jaxmlp.common.errors import UserError, cannot_write


RESULT_FILE = 'result.json'
PARAMS_FILE = 'params.msgpack'


def write_atomic(path: Path, content: str | bytes, flag: str = '--output_dir') -> None:
  """Writes `path` whole or not at all; an OS error is one line naming `flag`, the
  command's setting that chose the path."""
  if jax.process_index() != 0:
    return  # on several hosts, every host holds every result; one writes them
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    if isinstance(content, str):
      # A path the filesystem gave in bytes that are not UTF-8 (Python holds them as
      # surrogates) is written back as those bytes.
      content = content.encode('utf-8', 'surrogateescape')
    with os.fdopen(fd, 'wb') as f:
      f.write(content)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    tmp = None
  except OSError as e:
    raise UserError(cannot_write(path, e, flag)) from None
  finally:
    if tmp is not None:   # the previous file, if any, is untouched
      Path(tmp).unlink(missing_ok=True)


def write_json(path: Path, obj: Any) -> None:
  write_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + '\n')


def slug(label: str) -> str:
  """A configuration's label as a file name."""
  return ''.join(c if c.isalnum() or c in '.=-' else '_' for c in label)


def member_dir(folder: Path, member: study_lib.Member | records.MemberRecord) -> Path:
  """A member's own folder inside `folder` (STUDY/members, STUDY/trials, STUDY/final)."""
  return folder / f'{slug(member.label)}__seed{member.seed}'


def write_record(directory: Path, record: records.MemberRecord) -> None:
  write_json(directory / RESULT_FILE, record.to_json())


def write_member(directory: Path, record: records.MemberRecord,
                 weights: dict[str, Any]) -> None:
  """The parameters first, the result last: a result.json means the member is complete.

  params.msgpack holds {'initial', 'final', 'best'}: each a Flax params dict.
  """
  write_atomic(directory / PARAMS_FILE, flax.serialization.msgpack_serialize(weights))
  write_record(directory, record)


class Damaged(UserError):
  """A file that cannot be read back, or not as what it should hold."""

  def __init__(self, path: Path, why: str, fix: str):
    super().__init__(f'{path} is damaged ({why}): {fix}')
    self.path, self.why = path, why


def damaged(path: Path, error: Exception, fix: str) -> Damaged:
  """The one line for a file that cannot be read back: its path, why, and the fix."""
  return Damaged(path, ' '.join(f'{type(error).__name__}: {error}'.split())[:200], fix)


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
  """A JSON file that holds an object (run.json, pbt.json); anything else is named
  as damaged, with `fix`."""
  try:
    obj = json.loads(path.read_text())
    if not isinstance(obj, dict):
      raise ValueError('it holds no JSON object')
    return obj
  except (OSError, ValueError) as e:
    raise damaged(path, e, fix) from None


def load_json(path: Path, kind: Any, fix: str) -> Any:
  """The JSON file at `path`, checked against the schema `kind` (see schema.py); a file
  that cannot be read, is no JSON or has another shape is named as damaged, with `fix`."""
  obj = read_json_object(path, fix)
  try:
    schema.check(obj, kind)
  except schema.SchemaError as e:
    raise damaged(path, e, fix) from None
  return obj


def load_json_lines(path: Path, kind: Any, fix: str) -> list[Any]:
  """A JSON-lines file, each line an object checked against `kind`."""
  rows = []
  try:
    for n, line in enumerate(path.read_text().splitlines(), 1):
      if line.strip():
        try:
          row = json.loads(line)
          schema.check(row, kind)
        except ValueError as e:
          raise schema.SchemaError(f'line {n}: {e}') from None
        rows.append(row)
  except (OSError, ValueError) as e:
    raise damaged(path, e, fix) from None
  return rows


def _damaged(path: Path, error: Exception) -> UserError:
  return damaged(path, error, f'delete the folder {path.parent} and rerun the command '
                 'that trained it (the same command) to train that member again')


def read_result(directory: Path) -> dict[str, Any] | None:
  """A finished member's result.json as JSON, checked against the record's schema
  (e.g. to send to other hosts, then MemberRecord.from_json), or None if it has not
  finished."""
  path = directory / RESULT_FILE
  if not path.is_file():
    return None
  try:
    obj = json.loads(path.read_text())
    records.MemberRecord.check_json(obj)
    return obj
  except (OSError, ValueError) as e:
    raise _damaged(path, e) from None


def read_member(directory: Path) -> records.MemberRecord | None:
  """A finished member's record, or None if it has not finished."""
  result = read_result(directory)
  return None if result is None else records.MemberRecord.from_json(result)


def set_aside(directory: Path) -> Path:
  """Moves a member folder whose record is damaged to FOLDER.damaged/ beside its
  folder (kept whole, never deleted), so that the run trains that member again."""
  aside = directory.parent.with_name(directory.parent.name + '.damaged')
  aside.mkdir(parents=True, exist_ok=True)
  stamp = f"{directory.name}-{time.strftime('%Y%m%d-%H%M%S')}"
  target, n = aside / stamp, 1
  while target.exists():
    n += 1
    target = aside / f'{stamp}-{n}'
  os.replace(directory, target)
  return target


def load_params(directory: Path) -> dict[str, Any]:
  """{'initial': params, 'final': params, 'best': params} of a finished member."""
  path = directory / PARAMS_FILE
  try:
    params = flax.serialization.msgpack_restore(path.read_bytes())
  except Exception as e:  # pylint: disable=broad-except
    # msgpack raises ValueError, ExtraData, its own exceptions or TypeError on
    # truncated or corrupted bytes.
    raise _damaged(path, e) from None
  if not isinstance(params, dict) or not {'initial', 'final', 'best'} <= set(params):
    raise _damaged(path, ValueError('it does not hold initial, final and best weights'))
  return params


def load_member(directory: Path):
  """(record, structure, hparams, {'initial': params, 'final': params, ...}) of a member."""
  record = read_member(directory)
  if record is None or not (directory / PARAMS_FILE).is_file():
    raise UserError(f'{directory} holds no finished member: pass OUTPUT_DIR/STUDY/members/'
                    'NAME (a folder with result.json and params.msgpack)')
  member = record.member
  hparams = {k: np.float32(v) for k, v in member.hparams.items()}
  return record, member.structure, hparams, load_params(directory)


def member_record(member: study_lib.Member, result, k: int, reference: dict[str, Any],
                  program: str = '0', initial_epoch: int = 0) -> records.MemberRecord:
  """Member k of a program's result, as its record.

  A continued (Hyperband) trial's history, best epoch and weights count from its own
  start; `initial_epoch` says where in its lineage that start was.
  """
  trained = int(result.epochs_trained[k])
  history = {name: numbers.finite(values[k, :trained].tolist())
             for name, values in result.history.items()}
  test_loss = numbers.finite(result.test_loss[k])
  objective = study_lib.tracked_objective(member.values['objective'])
  return records.MemberRecord(
      label=member.label, arm=member.arm, seed=member.seed, swept=tuple(member.swept),
      config={f: member.values[f] for f in records.RECORD_FIELDS}, history=history,
      epochs_trained=trained, best_epoch=records.best_epoch(history, objective),
      diverged=records.diverged(history, test_loss, tested=True),
      run=records.ProgramRun(
          test_loss=test_loss, test_accuracy=numbers.finite(result.test_accuracy[k]),
          test_f1=numbers.finite(result.test_f1[k]), initial_epoch=initial_epoch,
          fit_time_s=float(result.fit_time_s[k]),
          compile_time_s=float(result.compile_time_s[k]),
          members_per_program=int(result.members_per_program[k]), program=program,
          weight_updates=int(result.weight_updates[k]), reference=reference),
      schedule=None if result.schedule is None else {
          name: numbers.finite(values[k, :trained].tolist())
          for name, values in result.schedule.items()})
