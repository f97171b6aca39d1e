"""A study run end to end (checked, searched, retrained, reported), and a saved member
evaluated back: what the command lines (launch.py, evaluate.py) call."""

import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections

from jaxmlp.core import costs
from jaxmlp.core import train
from jaxmlp.data import mnist as data_lib
from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp.engine import devices
from jaxmlp.common import hosts
from jaxmlp.engine import interrupt
from jaxmlp.store import lock as lock_lib
from jaxmlp.engine import footprint as footprint_lib
from jaxmlp.engine import plan
from jaxmlp.engine import runner
from jaxmlp.common.errors import UserError
from jaxmlp.report import configurations as configurations_report
from jaxmlp.report import report
from jaxmlp.report import tensorboard
from jaxmlp.store import folders
from jaxmlp.search import base
from jaxmlp.search import front
from jaxmlp.search import registry
from jaxmlp.studies import checks
from jaxmlp.store import run_identity
from jaxmlp.studies import study as study_lib


def check_study(config: ml_collections.ConfigDict, rows: int) -> None:
  """The run, the search's settings, the study's members, and those its final
  retraining would train. `config` gets every search's section (registry.complete)."""
  registry.complete(config)
  checks.check_run(config)
  search = registry.search_named(config.search)
  registry.check_settings(config)
  search.validate_config(config, rows)
  try:
    checks.check_members(search.final_configurations(config), rows)
  except UserError as e:
    raise UserError(str(e).replace('--config.batch_size', '--final_batch_size')) from None


def _require_one_process_for_latency(config: ml_collections.ConfigDict) -> None:
  """A latency objective or bound is timed on the device of the process that needs it:
  under jax.distributed each host would time its own and decide otherwise. (Asked once
  the devices are set up: asking JAX earlier would fix them before --cpu_devices or
  jax.distributed.initialize could.)"""
  named = {o.name for o in study_lib.objectives(config.objective)} | {
      c.name for c in study_lib.constraints(config.constraints)}
  if named & set(costs.LATENCIES) and jax.process_count() > 1:
    raise UserError(f'--config.objective={config.objective} times the network on each '
                    'host: run a study with latency_ms or batch_latency_ms in one process '
                    '(without jax.distributed)')


def require_fit(search: base.Search, config: ml_collections.ConfigDict,
                split: data_lib.Split) -> None:
  """Refuses (one line) a study whose programs the devices cannot hold, before anything
  is put on them or compiled: the search's own, and the final retraining's."""
  demands = search.program_demands(config)
  final = search.final_configurations(config)
  if final:
    demands += base.demands_of(final, config)
  data_bytes = plan.data_bytes_of(devices.split_arrays(split))
  for demand in demands:
    plan.require_fit(demand.structures, demand.slots, data_bytes, len(split.x_train),
                     flag=demand.flag)


def require_disk(config: ml_collections.ConfigDict, output_dir: Path,
                 tensorboard: bool = True) -> None:
  """Refuses (one line, with the estimate) a study whose files the disk cannot hold,
  before anything is put on a device or compiles."""
  search = registry.search_named(config.search)
  members = search.planned_members(config)
  final = search.final_configurations(config)
  if final:   # the best configuration's seeds, or a Pareto front's (at most its size)
    retrained = config.final_front_size if front.several(config) else 1
    members += base.largest_of(final, config.seeds * retrained)
  configurations = search.configurations(config)
  epochs = max(m.epochs for m in configurations + final)
  slots = config.max_members_per_program or \
      plan.CPU_MEMBERS_PER_DEVICE * len(jax.devices())
  figures = configurations_report.figure_count(len(configurations))
  footprint_lib.require_disk(
      footprint_lib.estimate(members, epochs, slots, figures, tensorboard),
      output_dir / config.name)


def study_lock(config: ml_collections.ConfigDict, output_dir: Path,
               worker_id: int = 0) -> lock_lib.StudyLock:
  """The lock a run of `config` holds on its study folder: the folder's own, or, for
  Optuna's workers (which share a study folder by design), its worker id's."""
  shared = registry.search_class(config.search).shares_folder
  return lock_lib.StudyLock(output_dir / config.name, worker_id if shared else None)


def run_study(config: ml_collections.ConfigDict, split: data_lib.Split, *, output_dir: Path,
              command: str, source: Path | None = None, on_records=None, **settings
              ) -> Path | None:
  """One study: its search, then its final retraining if it has one; returns the report
  (written by process 0; None on the others, and for an Optuna worker that only
  searches). `on_records(records)` is given every member the search trained or found.
  `settings`: runner.Settings' fields (checkpoints, progress, storage...).
  The study folder is locked for this run (see store/lock.py) until it returns or
  raises: a second run into it is refused before it reads or writes anything there."""
  jax.config.update('jax_default_matmul_precision', config.matmul_precision)
  registry.complete(config)
  search = registry.search_named(config.search)
  _require_one_process_for_latency(config)
  require_fit(search, config, split)
  require_disk(config, output_dir, settings.get('tensorboard', True))
  lock = study_lock(config, output_dir, settings.get('worker_id', 0))
  hosts.from_primary(lock.acquire)   # process 0 alone touches the folder
  try:
    return _run_locked(search, config, split, output_dir=output_dir, command=command,
                       source=source, on_records=on_records, **settings)
  finally:
    checkpoint_lib.finish_writes()   # before the lock goes: the folder is still ours
    lock.release()


def _run_locked(search: base.Search, config: ml_collections.ConfigDict,
                split: data_lib.Split, *, output_dir: Path, command: str,
                source: Path | None, on_records=None, **settings) -> Path | None:
  tensorboard_on = settings.pop('tensorboard', True)
  settings, data = runner.start(config, split, output_dir,
                                identity=registry.identity_rules(config.search), **settings)
  board = tensorboard.Board.for_study(settings.study_dir, config,
                                      enabled=tensorboard_on and hosts.is_primary())
  settings = dataclasses.replace(settings, board=board)
  outcome = search.run(config, settings, data)
  if outcome is None:
    return None
  interrupt.raise_if_requested()
  final = search.final_model(config, settings, data, outcome)
  runner.finish(settings)
  interrupt.raise_if_requested()  # a stop in the last epoch: the members are written
  if not hosts.is_primary():
    return None
  if on_records is not None:
    on_records(outcome.records)
  summary = outcome.write_summary(settings.study_dir)
  if summary is not None:
    print('\n' + configurations_report.capped(summary, configurations_report.TABLE_ROWS,
                                             'configurations'))
  return report.write_report(settings.study_dir, config, split, command=command,
                             outcome=outcome, source=source, final=final)


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
  record, structure, hparams, params = folders.load_member(member_dir)
  split = data_lib.load_split(run_settings(member_dir), data_dir)
  loss, accuracy, _ = jax.jit(train.evaluate, static_argnames='structure')(
      params['final'], split.x_test, split.y_test, hparams, structure=structure)
  loss, accuracy = float(loss), float(accuracy)
  return dict(run=str(member_dir), test_loss=loss, test_accuracy=accuracy,
              recorded_test_loss=record.run.test_loss,
              recorded_test_accuracy=record.run.test_accuracy,
              identical=loss == record.run.test_loss and accuracy == record.run.test_accuracy)
