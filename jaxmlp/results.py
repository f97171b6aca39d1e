"""Exports a study folder's results as a table: one row per member, or per epoch.

  python -m jaxmlp.results results/baseline --format=csv
  python -m jaxmlp.results results/finetune --format=parquet --output=finetune.parquet
  python -m jaxmlp.results results/baseline --format=markdown --history
  python -m jaxmlp.results results/finetune --pareto='(val_accuracy, parameter_count)'

The rows and columns are jaxmlp.read_results' (read_history's with --history;
read_pareto's, one row per configuration ranked by several objectives, with --pareto).
"""

import importlib
import io
import math
import sys
from pathlib import Path

from absl import app
from absl import flags

from jaxmlp import cli
from jaxmlp.common.errors import UserError

FORMATS = ('csv', 'parquet', 'markdown')

_FORMAT = flags.DEFINE_enum('format', 'csv', FORMATS, 'What to write the table as.')
_OUTPUT = flags.DEFINE_string('output', None, 'The file to write (default: stdout).')
_HISTORY = flags.DEFINE_bool('history', False, 'One row per member and epoch (the '
                             'per-epoch history) instead of one row per member.')
_PARETO = flags.DEFINE_string(
    'pareto', None, 'One row per configuration, ranked by these objectives: '
    "'(val_accuracy, parameter_count)'; any of val_accuracy, val_loss, val_f1, "
    'parameter_count, flops, latency_ms, batch_latency_ms (as the study measured them), '
    'each may end in :min or :max. Columns: each objective\'s '
    'mean over seeds (and _std), pareto_rank (0: the front), crowding_distance.')
_CONSTRAINTS = flags.DEFINE_string(
    'constraints', '', "With --pareto: bounds, '(parameter_count <= 100000,)'; feasible "
    'configurations rank first (Deb\'s rules); adds violation and feasible.')


def _markdown_cell(value) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ''
  return str(value).replace('|', '\\|')


def markdown_table(frame) -> str:
  """A GitHub markdown table of `frame`, without tabulate (what to_markdown needs)."""
  rows = [[str(c) for c in frame.columns]]
  rows += [[_markdown_cell(v) for v in row] for row in frame.itertuples(index=False)]
  lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
  lines.insert(1, '|' + '---|' * len(frame.columns))
  return '\n'.join(lines) + '\n'


def _require_pyarrow() -> None:
  try:
    importlib.import_module('pyarrow')
  except ImportError:
    raise UserError("--format=parquet needs pyarrow: pip install 'jaxmlp[parquet]'") from None


def _has_tabulate() -> bool:
  try:
    importlib.import_module('tabulate')
  except ImportError:
    return False
  return True


def table_bytes(frame, fmt: str) -> bytes:
  """`frame` written as `fmt` (one of FORMATS)."""
  if fmt == 'csv':
    return frame.to_csv(index=False).encode()
  if fmt == 'parquet':
    _require_pyarrow()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
  if fmt == 'markdown':
    text = frame.to_markdown(index=False) + '\n' if _has_tabulate() else markdown_table(frame)
    return text.encode()
  raise UserError(f'--format={fmt}: choose one of {", ".join(FORMATS)}')


def export(study_dir: str, fmt: str, output: str | None = None,
           history: bool = False, pareto: str | None = None, constraints: str = '') -> None:
  """Writes the study's table to `output`, or to stdout."""
  if history and pareto:
    raise UserError('--history and --pareto are two tables: pass one of them')
  if constraints and not pareto:
    raise UserError('--constraints bound a --pareto ranking: pass --pareto=OBJECTIVES too')
  if fmt == 'parquet':
    _require_pyarrow()   # before reading the study: the mistake is the command's
  from jaxmlp import frames   # pandas: loaded only once the flags are good
  if pareto:
    frame = frames.read_pareto(Path(study_dir), pareto, constraints)
  else:
    frame = (frames.read_history if history else frames.read_results)(Path(study_dir))
  content = table_bytes(frame, fmt)
  if output:
    from jaxmlp.store import folders as results_lib   # pylint: disable=g-import-not-at-top
    results_lib.write_atomic(Path(output), content, flag='--output')
  else:
    cli.write_stdout(content)


def main(argv):
  cli.guard_streams()
  cli.quiet_logs()
  try:
    if len(argv) != 2:
      raise UserError('pass one study folder: python -m jaxmlp.results OUTPUT_DIR/STUDY '
                      '[--format=csv|parquet|markdown] [--output=FILE] [--history | '
                      '--pareto=OBJECTIVES]')
    export(argv[1], _FORMAT.value, _OUTPUT.value, _HISTORY.value, _PARETO.value,
           _CONSTRAINTS.value)
  except UserError as e:
    cli.fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
