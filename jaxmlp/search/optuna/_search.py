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
from jaxmlp.common.errors import UserError
from jaxmlp.store import folders
from jaxmlp.search.optuna import _report
from jaxmlp.search.optuna import _space
from jaxmlp.search.optuna import _study
from jaxmlp.search.optuna import _worker


def finish_study(worker: _worker.OptunaWorker, poll_s: float = 5.0) -> None:
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
    _study.recover_stale(study)


def run(config: ml_collections.ConfigDict, settings: runner.Settings,
        data: runner.LazyDeviceData) -> _report.OptunaOutcome | None:
  if jax.process_count() > 1:
    raise UserError('--search=optuna runs one process per worker, not under '
                    'jax.distributed: start workers with launch/optuna_workers.sh')
  options = settings.search_options
  storage, worker_id, search_only = (options.get('storage'), options.get('worker_id', 0),
                                     options.get('search_only', False))
  study = _study.open_study(config, settings.study_dir, storage, worker_id)
  worker = _worker.OptunaWorker(config, settings, data, study, worker_id)
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
                    '--config.optuna.trials or the time budget, or use --config.optuna.pruner=none')
  best = _report.best_trial(study, finished, config)
  # What this worker wrote, from memory; what other workers or an earlier run wrote,
  # from their files.
  records = [worker.written.get(d.name) or folders.read_member(d)
             for d in sorted((settings.study_dir / 'trials').iterdir())
             if (d / folders.RESULT_FILE).is_file()]
  return _report.OptunaOutcome(
      _space.configuration_of(worker.fields, best.params), records, study,
      worker.programs_built, time.monotonic() - worker.started, best,
      _study.shown(storage)
      or str((settings.study_dir / _study.STORAGE_FILE).absolute()))
