"""An Optuna study's storage and workers: where the study lives (SQLite in the study
folder, an RDB URL or a journal file), the sampler and pruner a config names, and
which running trials belong to a dead worker (failed and asked again)."""

import os
import socket
import time
import warnings
from pathlib import Path

import optuna

from jaxmlp.studies import study as study_lib
from jaxmlp.common.errors import UserError

STORAGE_FILE = 'optuna.db'
# A running trial whose worker has not written a heartbeat for this long is taken
# for dead (another host's worker; on this host, a dead worker's pid tells at once).
STALE_S = 300.0
# A running trial no worker has claimed yet: a worker names itself as soon as the
# sampler has chosen the parameters, so one still unnamed after this long (longer than
# a database lock is waited for) was asked by a worker since killed.
UNCLAIMED_S = 120.0
WORKER = f'{socket.gethostname()}:{os.getpid()}'


def quiet() -> None:
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  warnings.filterwarnings('ignore', category=optuna.exceptions.ExperimentalWarning)


def storage_url(study_dir: Path, storage: str | None) -> str | optuna.storages.BaseStorage:
  """The study's storage: --storage (an RDB URL, or a journal file path ending in
  .log or .journal), else an SQLite file in the study folder."""
  if storage and not storage.endswith(('.log', '.journal')):
    return storage
  if storage:
    from optuna.storages import journal  # pylint: disable=g-import-not-at-top
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(journal.JournalFileBackend(storage))
  study_dir.mkdir(parents=True, exist_ok=True)
  return optuna.storages.RDBStorage(
      f'sqlite:///{(study_dir / STORAGE_FILE).absolute()}',
      engine_kwargs={'connect_args': {'timeout': 60}})


# A trial's constraint values (<= 0: each holds), kept as a user attribute too (the
# report ranks by them whatever Optuna's version).
CONSTRAINTS_ATTR = 'constraints'
# Optuna 5 sets constraints on the trial (its samplers and best_trials read them
# there) and deprecates the samplers' constraints_func, which Optuna 4 needs.
TRIAL_CONSTRAINTS = hasattr(optuna.trial.Trial, 'set_constraint')


def constraint_values(trial: optuna.trial.FrozenTrial) -> list[float]:
  """constraints_func (Optuna 4): what the worker wrote before telling the trial (a
  trial told without them, failed or interrupted, violates nothing Optuna looks at)."""
  return list(trial.user_attrs.get(CONSTRAINTS_ATTR, ()))


def set_constraints(trial: optuna.trial.Trial, constraints, values: list[float]) -> None:
  """The trial's constraint values, where the samplers and study.best_trials of this
  Optuna version read them, before it is told."""
  trial.set_user_attr(CONSTRAINTS_ATTR, values)
  if TRIAL_CONSTRAINTS:
    for constraint, value in zip(constraints, values):
      trial.set_constraint(str(constraint), value)


def sampler_of(config, worker_id: int) -> optuna.samplers.BaseSampler:
  seed = config.search_seed + 1000 * worker_id   # workers must not propose alike
  kind = config.optuna.sampler
  bounded = ({'constraints_func': constraint_values} if not TRIAL_CONSTRAINTS and
             study_lib.constraints(config.get('constraints', '')) else {})
  if kind == 'tpe':
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, **bounded)
  if kind == 'random':
    return optuna.samplers.RandomSampler(seed=seed)
  if kind == 'cmaes':
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
  if kind == 'nsga2':
    return optuna.samplers.NSGAIISampler(seed=seed, **bounded)
  if kind == 'nsga3':
    return optuna.samplers.NSGAIIISampler(seed=seed, **bounded)
  if kind == 'gp':
    return optuna.samplers.GPSampler(seed=seed, **bounded)
  return optuna.samplers.QMCSampler(seed=seed)


def several(config) -> bool:
  """Whether the study has several objectives (then Optuna's pruners stand aside:
  they judge one intermediate value; _pareto_rungs prunes)."""
  return len(study_lib.objectives(config.objective)) > 1


def pruner_of(config) -> optuna.pruners.BasePruner:
  kind, epochs = config.optuna.pruner, max(study_lib.axis_values('epochs', config.epochs))
  if several(config):
    return optuna.pruners.NopPruner()
  if kind == 'median':
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
  if kind == 'successive_halving':
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
  if kind == 'hyperband':
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                          reduction_factor=3)
  return optuna.pruners.NopPruner()


INTERRUPTED = 'interrupted'   # user attr of a trial failed because its worker stopped
OVER_BUDGET = 'over_budget'   # user attr of a trial another worker's took the last place of


def interrupted(study: optuna.Study, trial) -> bool:
  """`trial` (a Trial or FrozenTrial, still running) failed because its worker
  stopped or died: it is marked so (it does not count against the budget) and its
  parameters, if they were whole, are asked again as a new trial. False if another
  worker got there first."""
  # Optuna has no public call to write a user attribute by trial number; its own
  # retry callback goes through the storage in the same way.
  storage = study._storage  # pylint: disable=protected-access
  frozen = storage.get_trial(trial._trial_id)  # pylint: disable=protected-access
  # Whole parameters: a retry's, fixed in the queue from the start, or those of a
  # trial its worker claimed (it does so once the sampler returns). A worker killed
  # while the sampler chose leaves some or none: nothing trained, nothing to repeat.
  params = frozen.system_attrs.get('fixed_params') or (
      frozen.params if 'worker' in frozen.user_attrs else {})
  try:
    storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)  # pylint: disable=protected-access
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
  except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
    return False   # already finished (another worker recovered it)
  if params:
    study.enqueue_trial(params, user_attrs={'retry_of': trial.number})
  return True


def duplicate_retry(study: optuna.Study, trial: optuna.trial.Trial) -> bool:
  """Whether `trial`, just asked, repeats a retry that another trial also holds: two
  workers recovering one dead trial at once may both queue it (SQLite takes no row
  locks). The lowest-numbered copy runs; the others are dropped, uncounted."""
  original = trial.user_attrs.get('retry_of')
  if original is None:
    return False
  first = min(t.number for t in study.get_trials(deepcopy=False)
              if t.user_attrs.get('retry_of') == original)
  if first == trial.number:
    return False
  trial.set_user_attr(INTERRUPTED, True)   # not counted against the budget
  trial.set_user_attr('duplicate_of', first)
  study.tell(trial, state=optuna.trial.TrialState.FAIL)
  return True


def _counted(t: optuna.trial.FrozenTrial) -> bool:
  """Whether a trial counts against the budget (see `counted`)."""
  return t.state != optuna.trial.TrialState.WAITING and not (
      t.state == optuna.trial.TrialState.FAIL and
      (t.user_attrs.get(INTERRUPTED) or t.user_attrs.get(OVER_BUDGET)))


def counted(study: optuna.Study) -> int:
  """Trials that count against the budget: all but those failed by an interruption
  (a dead or stopped worker's), those asked past the budget (`within_budget`) and
  those waiting in the queue (their parameters asked again, which `study.ask` hands
  out first and which count once started)."""
  return sum(map(_counted, study.get_trials(deepcopy=False)))


def within_budget(study: optuna.Study, trial: optuna.trial.Trial, n_trials: int) -> bool:
  """Whether `trial`, just asked, is one of the study's first `n_trials`. Workers check
  the budget and then ask, and no storage makes that one step: two workers that both
  saw room for the last trial ask one each. Trial numbers order them; the later one
  is failed, uncounted, before it trains. Queued retries ahead of it hold their
  places (whoever asks next runs them)."""
  ahead = sum(1 for t in study.get_trials(deepcopy=False) if t.number < trial.number and
              (_counted(t) or t.state == optuna.trial.TrialState.WAITING))
  if ahead < n_trials:
    return True
  trial.set_user_attr(OVER_BUDGET, True)
  study.tell(trial, state=optuna.trial.TrialState.FAIL)
  return False


def outcome(t: optuna.trial.FrozenTrial) -> str:
  """A trial's state as the report names it: failures split by why."""
  if t.state == optuna.trial.TrialState.FAIL and 'duplicate_of' in t.user_attrs:
    return 'second copy of a retry (not trained)'
  if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get(INTERRUPTED):
    return 'interrupted (asked again)'
  if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get(OVER_BUDGET):
    return 'past the budget (not trained)'
  return t.state.name.lower()


def recover_stale(study: optuna.Study, mine: set[int] = frozenset()) -> int:
  """Marks failed the running trials whose worker is dead (not this one's `mine`) and
  asks their parameters again; returns how many."""
  return sum(interrupted(study, t) for t in
             study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
             if t.number not in mine and _dead(t))


def _dead(trial: optuna.trial.FrozenTrial) -> bool:
  """A running trial whose worker is gone: its pid on this host, or no heartbeat."""
  worker = trial.user_attrs.get('worker', '')
  host, _, pid = worker.rpartition(':')
  if host == socket.gethostname() and pid.isdigit():
    try:
      os.kill(int(pid), 0)
    except ProcessLookupError:
      return True
    except PermissionError:
      pass
  beat = trial.user_attrs.get('heartbeat')
  if beat is None:
    start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    return time.time() - start > (STALE_S if worker else UNCLAIMED_S)
  return time.time() - beat > STALE_S


def shown(storage: str | None) -> str | None:
  """`storage` as messages, run.json and the report may show it: an RDB URL with its
  password masked (SQLAlchemy's own rendering); a journal file's path as it is."""
  if not storage or '://' not in storage:
    return storage
  try:
    from sqlalchemy.engine import make_url  # pylint: disable=g-import-not-at-top
    return make_url(storage).render_as_string(hide_password=True)
  except Exception:  # pylint: disable=broad-except
    # Not a URL SQLAlchemy can parse: hide whatever sits between '://' and '@'.
    scheme, _, rest = storage.partition('://')
    return f'{scheme}://***@{rest.rpartition("@")[2]}' if '@' in rest else storage


def _scrubbed(text: str, storage: str | None) -> str:
  """`text` (an error's message) without the password of `storage` in it."""
  if storage and '://' in storage:
    text = text.replace(storage, shown(storage))
    try:
      from sqlalchemy.engine import make_url  # pylint: disable=g-import-not-at-top
      password = make_url(storage).password
    except Exception:  # pylint: disable=broad-except
      password = storage.partition('://')[2].rpartition('@')[0].partition(':')[2]
    if password:
      text = text.replace(str(password), '***')
  return text


def _lasting(error: Exception) -> bool:
  """An error that trying again cannot cure (so there is no point waiting)."""
  text = str(error).lower()
  return isinstance(error, ImportError) or type(error).__name__ in (
      'ArgumentError', 'NoSuchModuleError') or any(
          words in text for words in ('not a database', 'malformed', 'unable to open'))


def open_failure(error: Exception, study_dir: Path, storage: str | None) -> UserError:
  """One line for a study that cannot be opened: the storage given (password masked),
  or the study folder's own database, which is then damaged."""
  why = _scrubbed(' '.join(f'{type(error).__name__}: {error}'.split()), storage)[:300]
  if storage:
    return UserError(f'the Optuna storage {shown(storage)} could not be opened ({why}): '
                     'check --storage (the URL, the server, its driver installed)')
  path = study_dir / STORAGE_FILE
  return UserError(f'the Optuna study database {path} could not be opened ({why}): it is '
                   'damaged or not an SQLite file: restore it from a copy, or move it '
                   'aside to start the search over')


def open_study(config, study_dir: Path, storage: str | None, worker_id: int,
               attempts: int = 5) -> optuna.Study:
  """The study, created by the first worker to come (workers that start together on
  a new database race to create its tables: the losers try again)."""
  quiet()
  for attempt in range(attempts):
    try:
      return optuna.create_study(
          study_name=config.name, storage=storage_url(study_dir, storage),
          sampler=sampler_of(config, worker_id), pruner=pruner_of(config),
          directions=[o.optuna_direction for o in study_lib.objectives(config.objective)],
          load_if_exists=True)
    except Exception as e:  # pylint: disable=broad-except
      # SQLAlchemy's errors on a database another worker is creating, or a bad URL.
      if attempt == attempts - 1 or _lasting(e):
        raise open_failure(e, study_dir, storage) from None
      time.sleep(0.5 + attempt)
