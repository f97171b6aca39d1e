"""A study run end to end (checked, searched, retrained, reported), and a saved member
evaluated back: what the command lines (launch.py, evaluate.py) call."""

import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections

from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import hosts
from jaxmlp.engine import interrupt
from jaxmlp.report import report
from jaxmlp.report import results
from jaxmlp.studies import run_identity
from jaxmlp.engine import runner
from jaxmlp.search import registry as searches
from jaxmlp.studies import study as study_lib
from jaxmlp.core import train
from jaxmlp.errors import UserError


def validate(config: ml_collections.ConfigDict, rows: int) -> None:
  """The run, the study's members, and those its final retraining would train."""
  study_lib.validate_run(config)
  if config.search != 'optuna':   # an Optuna trial's values are checked as it is asked
    study_lib.validate(study_lib.expand(config), rows)
  searches.validate(config, rows)
  if config.final_epochs:
    final = [dataclasses.replace(m, values=dict(m.values, batch_size=config.final_batch_size))
             for m in searches.configurations(config)]
    try:
      study_lib.validate(final, rows)
    except UserError as e:
      raise UserError(str(e).replace('--config.batch_size', '--final_batch_size')) from None


def run_study(config: ml_collections.ConfigDict, split: data_lib.Split, *, output_dir: Path,
              command: str, source: Path | None = None, **settings) -> Path | None:
  """One study: its search, then its final retraining if it has one; returns the report
  (written by process 0; None on the others, and for an Optuna worker that only
  searches). `settings`: runner.Settings' fields (checkpoints, progress, storage...)."""
  jax.config.update('jax_default_matmul_precision', config.matmul_precision)
  settings, data = runner.start(config, split, output_dir, **settings)
  outcome = searches.run(config, settings, data)
  if outcome is None:
    return None
  final = None
  if config.final_epochs:
    interrupt.raise_if_requested()
    final = runner.run_final(config, settings, data, outcome.best)
  runner.finish(settings)
  interrupt.raise_if_requested()  # a stop in the last epoch: the members are written
  if not hosts.is_primary():
    return None
  if outcome.records is not None:
    print(f'\n{results.write_summary(settings.study_dir, outcome.records)}')
  return report.write_report(settings.study_dir, config, split, command=command,
                             source=source, records=outcome.records,
                             search=outcome.search, final=final)


def run_settings(member_dir: Path) -> dict[str, Any]:
  """The data settings of the run a member belongs to (the defaults where the folder
  has no run.json, e.g. a member copied elsewhere)."""
  study_dir = member_dir.resolve().parents[1]
  stored = {}
  if (study_dir / run_identity.RUN_FILE).is_file():
    stored = run_identity.read(study_dir).get('config', {})
  return {**study_lib.baseline(), **stored}


def evaluate_member(member_dir: Path, data_dir: str | None = None) -> dict[str, Any]:
  """The member's final weights on its run's test set, beside what it recorded."""
  record, structure, hparams, params = results.load_member(member_dir)
  split = data_lib.load_split(run_settings(member_dir), data_dir)
  loss, accuracy, _ = jax.jit(train.evaluate, static_argnames='structure')(
      params['final'], split.x_test, split.y_test, hparams, structure=structure)
  loss, accuracy = float(loss), float(accuracy)
  return dict(run=str(member_dir), test_loss=loss, test_accuracy=accuracy,
              recorded_test_loss=record['test_loss'],
              recorded_test_accuracy=record['test_accuracy'],
              identical=loss == record['test_loss'] and accuracy == record['test_accuracy'])
