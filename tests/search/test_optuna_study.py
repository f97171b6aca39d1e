"""optuna._study: interrupted trials are failed, asked again first, and the budget
counts each configuration once."""

import optuna
import pytest

from jaxmlp.common.errors import UserError
from jaxmlp.search.optuna import _study
from jaxmlp.studies import study


def _new_study() -> optuna.Study:
  _study.quiet()
  return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def _claimed(study: optuna.Study, space) -> optuna.trial.Trial:
  """A trial asked and claimed, as a worker does before training it."""
  trial = study.ask(space)
  trial.set_user_attr('worker', 'host:1')
  return trial


def test_an_interrupted_trial_is_asked_again_before_new_ones():
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
  done, cut = study.ask(space), _claimed(study, space)
  study.tell(done, 0.5)
  assert _study.interrupted(study, cut)
  assert not _study.interrupted(study, cut)   # a second worker finds it failed
  retry = study.ask(space)
  assert retry.params == cut.params and retry.user_attrs['retry_of'] == cut.number
  assert study.trials[cut.number].state == optuna.trial.TrialState.FAIL


def test_the_budget_counts_neither_interrupted_nor_queued_trials():
  # A search killed with its whole budget asked: the trials it left running come
  # back as queued retries, and these must still run within the same budget.
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
  trials = [_claimed(study, space) for _ in range(4)]
  study.tell(trials[0], 0.1)
  study.tell(trials[1], state=optuna.trial.TrialState.PRUNED)
  for trial in trials[2:]:
    _study.interrupted(study, trial)
  assert _study.counted(study) == 2 < 4   # room for both retries
  for _ in range(2):
    study.tell(study.ask(space), 0.2)
  assert _study.counted(study) == 4
  assert [t.user_attrs.get('retry_of') for t in study.trials[4:]] == [2, 3]


def test_programs_are_sized_by_the_structures_a_space_can_need():
  from jaxmlp.search.optuna import _space   # pylint: disable=g-import-not-at-top
  from jaxmlp.studies import space   # pylint: disable=g-import-not-at-top
  from jaxmlp.studies import study   # pylint: disable=g-import-not-at-top
  config = study.load_config('finetune_optuna')
  count = lambda c: _space.structure_count(
      _space.fields_of(c)[0], _space.distributions(*_space.fields_of(c)))
  assert count(config) == 4   # hidden 64|128 x 256|512; the L2 and rates are traced
  config.l2 = space.uniform(0.0, 1e-3)   # no penalty at all is another program
  assert count(config) == 8
  config.hidden_sizes = (space.integer(16, 1024), 256)
  assert count(config) == 1 << 12   # too many to count


def test_a_trial_a_killed_worker_never_claimed_is_failed_without_a_retry(monkeypatch):
  # A worker killed between asking a trial and naming itself leaves it running with no
  # worker, no heartbeat and (while the sampler chose them) no parameters.
  study = _new_study()
  orphan = study.ask()
  assert _study.recover_stale(study) == 0   # it may still be claimed
  now = _study.time.time()
  monkeypatch.setattr(_study.time, 'time', lambda: now + _study.UNCLAIMED_S + 1)
  assert _study.recover_stale(study) == 1
  assert study.trials[orphan.number].state == optuna.trial.TrialState.FAIL
  assert len(study.trials) == 1   # nothing to ask again


def test_parameters_are_asked_again_only_when_whole():
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
           'l2': optuna.distributions.FloatDistribution(1e-8, 1e-3, log=True)}
  # Killed after the sampler chose but before the worker claimed the trial: whether
  # the parameters are whole cannot be told, and no epoch of them was trained.
  sampled = study.ask(space)
  assert _study.interrupted(study, sampled)
  assert len(study.trials) == 1
  claimed = study.ask(space)
  claimed.set_user_attr('worker', 'host:1')
  assert _study.interrupted(study, claimed)
  retry = study.ask(space)
  assert retry.params == claimed.params
  # A retry killed before it was claimed still holds its parameters in the queue's.
  assert _study.interrupted(study, retry)
  again = study.ask(space)
  assert again.params == claimed.params and again.user_attrs['retry_of'] == retry.number


def test_fields_that_do_not_change_the_structure_do_not_multiply_programs():
  from jaxmlp.search.optuna import _space   # pylint: disable=g-import-not-at-top
  from jaxmlp.studies import space   # pylint: disable=g-import-not-at-top
  from jaxmlp.studies import study   # pylint: disable=g-import-not-at-top
  config = study.load_config('finetune_optuna')
  config.epochs = space.integer(5, 100)            # many values, one program
  config.dropout_rate = space.uniform(0.1, 0.5)    # dropout on in every trial
  fields, swept = _space.fields_of(config)
  assert _space.structure_count(fields, _space.distributions(fields, swept)) == 4


def test_two_workers_that_queue_one_retry_run_it_once():
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
  dead = study.ask(space)
  # Both workers found it dead at once and queued it (what SQLite's missing row locks
  # allow): the first copy runs, the second is dropped uncounted.
  for _ in range(2):
    study.enqueue_trial(dead.params, user_attrs={'retry_of': dead.number})
  study.tell(dead, state=optuna.trial.TrialState.FAIL)
  first, second = study.ask(space), study.ask(space)
  assert not _study.duplicate_retry(study, first)
  assert _study.duplicate_retry(study, second)
  assert study.trials[second.number].state == optuna.trial.TrialState.FAIL
  assert _study.outcome(study.trials[second.number]) == (
      'second copy of a retry (not trained)')
  assert _study.counted(study) == 2   # the dead trial and its one retry


def test_two_workers_that_both_saw_room_for_the_last_trial_train_only_one():
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
  for _ in range(3):
    study.tell(study.ask(space), 0.5)
  assert _study.counted(study) == 3 < 4   # both workers see room, both ask
  first, second = study.ask(space), study.ask(space)
  assert _study.within_budget(study, first, 4)
  assert not _study.within_budget(study, second, 4)
  assert study.trials[second.number].state == optuna.trial.TrialState.FAIL
  assert _study.counted(study) == 4
  assert _study.outcome(study.trials[second.number]) == 'past the budget (not trained)'


def test_a_queued_retry_holds_its_place_in_the_budget():
  study = _new_study()
  space = {'lr': optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
  study.tell(study.ask(space), 0.5)
  study.enqueue_trial({'lr': 1e-3}, user_attrs={'retry_of': 0})
  # Another worker's ask that looked at the queue just before the retry was queued:
  # a new trial, numbered after it.
  storage = study._storage  # pylint: disable=protected-access
  late = optuna.trial.Trial(study, storage.create_new_trial(study._study_id))  # pylint: disable=protected-access
  assert not _study.within_budget(study, late, 2)   # the retry is ahead of it
  retry = study.ask(space)
  assert retry.user_attrs['retry_of'] == 0 and _study.within_budget(study, retry, 2)
  assert retry.params == {'lr': 1e-3} and _study.counted(study) == 2


# Secrets and damaged storage: one line, the password never shown.

SECRET_URL = 'postgresql://alice:s3cr3t-pw@127.0.0.1:1/studies'


def test_a_storage_url_is_shown_with_its_password_masked():
  assert _study.shown(SECRET_URL) == 'postgresql://alice:***@127.0.0.1:1/studies'
  assert _study.shown('/runs/study.log') == '/runs/study.log'
  assert _study.shown(None) is None
  assert 's3cr3t' not in _study.shown('weird://alice:s3cr3t@[bad')


def test_an_unreachable_storage_never_echoes_its_password(tmp_path, monkeypatch):
  config = study.make_config(name='s', search='optuna')
  with pytest.raises(UserError) as e:   # no driver installed here, or no server
    _study.open_study(config, tmp_path, SECRET_URL, worker_id=0, attempts=1)
  assert 's3cr3t' not in str(e.value) and str(e.value).endswith('check --storage (the '
                                                                'URL, the server, its driver installed)')
  assert str(e.value).startswith('the Optuna storage postgresql://alice:***@127.0.0.1:1/'
                                 'studies could not be opened (')

  def echoing(**kwargs):   # a driver whose error repeats the URL it was given
    raise RuntimeError(f'could not connect to {SECRET_URL} (password s3cr3t-pw refused)')

  monkeypatch.setattr(optuna, 'create_study', echoing)
  with pytest.raises(UserError) as e:
    _study.open_study(config, tmp_path, SECRET_URL, worker_id=0, attempts=1)
  assert 's3cr3t' not in str(e.value) and 'alice:***@127.0.0.1' in str(e.value)


def test_a_damaged_study_database_is_named_without_blaming_storage(tmp_path):
  config = study.make_config(name='s', search='optuna')
  (tmp_path / _study.STORAGE_FILE).write_bytes(b'SQLite format 3\0' + b'\xff' * 600)
  with pytest.raises(UserError) as e:
    _study.open_study(config, tmp_path, None, worker_id=0)
  message = str(e.value)
  assert message.startswith(f'the Optuna study database {tmp_path / "optuna.db"} could not '
                            'be opened (')
  assert message.endswith('it is damaged or not an SQLite file: restore it from a copy, or '
                          'move it aside to start the search over')
  assert '--storage' not in message and '\n' not in message
