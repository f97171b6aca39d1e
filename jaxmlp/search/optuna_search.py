"""--search=optuna: Optuna's samplers and pruners fill the member slots of compiled
programs through its ask-and-tell interface.

Trials that share a structure share one program (slots.py). Between epochs every
running trial reports its objective (the mean over its executions, one slot per seed)
and the pruner decides; a pruned or finished trial's slots take the next asked trial
at once, without recompiling and without disturbing the other slots. The study lives
in Optuna's storage (an SQLite file in the study folder by default; --storage for
PostgreSQL, MySQL or a journal file), so several workers can share it and a killed run
continues it: finished trials are kept, trials left running by a dead worker are
marked failed and their parameters asked again.
"""

import time

import jax
import ml_collections
import optuna

from jaxmlp.engine import interrupt
from jaxmlp.engine import runner
from jaxmlp.errors import UserError
from jaxmlp.report import results
from jaxmlp.search import base
from jaxmlp.search import optuna_report
from jaxmlp.search import optuna_space
from jaxmlp.search import optuna_study
from jaxmlp.search import optuna_worker
from jaxmlp.studies import study as study_lib


def finish_study(worker: optuna_worker.OptunaWorker, poll_s: float = 5.0) -> None:
  """Until no trial of the study runs, the other workers' included; trials that a
  dead worker left (failed, asked again) are run here while the budget allows."""
  study = worker.study
  while True:
    waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    if waiting and worker.may_ask():
      worker.run()
      continue
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
      return
    interrupt.raise_if_requested()
    time.sleep(poll_s)
    optuna_study.recover_stale(study)


class OptunaSearch(base.Search):
  name = 'optuna'

  def validate_config(self, config: ml_collections.ConfigDict, rows: int) -> None:
    # A trial's members are checked as it is asked; the space at its edges here.
    optuna_space.validate_space(config, rows)

  def configurations(self, config: ml_collections.ConfigDict) -> list[study_lib.Member]:
    """One point of the space (its values are checked at the edges by validate_config)."""
    return [optuna_space.representative(config)]

  def program_demands(self, config: ml_collections.ConfigDict) -> list[base.Demand]:
    """Programs of --config.optuna_slots slots, rounded up to whole trials (all their
    seeds), of any structure the space holds."""
    slots = -(-config.optuna_slots // config.seeds) * config.seeds
    return [base.Demand(frozenset(m.structure for m in self.configurations(config)), slots,
                        'optuna_slots')]

  def run(self, config: ml_collections.ConfigDict, settings: runner.Settings,
          data: runner.LazyDeviceData) -> optuna_report.OptunaOutcome | None:
    return run(config, settings, data)


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.LazyDeviceData) -> optuna_report.OptunaOutcome | None:
  if jax.process_count() > 1:
    raise UserError('--search=optuna runs one process per worker, not under '
                    'jax.distributed: start workers with launch/optuna_workers.sh')
  storage, worker_id, search_only = (settings.storage, settings.worker_id,
                                     settings.search_only)
  study = optuna_study.open_study(config, settings.study_dir, storage, worker_id)
  worker = optuna_worker.OptunaWorker(config, settings, data, study, worker_id)
  try:
    worker.run()
  except KeyboardInterrupt:
    worker.abandon()
    raise
  if search_only:
    return None
  finish_study(worker)
  finished = [t for t in study.get_trials(deepcopy=False)
              if t.state == optuna.trial.TrialState.COMPLETE]
  if not finished:
    raise UserError(f'the Optuna study {config.name!r} has no completed trial: raise '
                    '--config.optuna_trials or the time budget, or use --config.optuna_pruner=none')
  best = study.best_trial
  records = [results.read_member(d) for d in sorted((settings.study_dir / 'trials').iterdir())
             if (d / results.RESULT_FILE).is_file()]
  return optuna_report.OptunaOutcome(
      optuna_space.configuration_of(worker.fields, best.params), records, study,
      worker.programs_built, time.monotonic() - worker.started, best,
      optuna_study.shown(storage)
      or str((settings.study_dir / optuna_study.STORAGE_FILE).absolute()))
