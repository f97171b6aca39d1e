"""--search=optuna end to end: the study database holds every trial, a killed search
continues the same study, two workers share one study, the dashboard serves it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

ARGS = ['--study=finetune_optuna', '--data_limit=500', '--epochs=3',
        "--config.hidden_sizes=(choice(32, 64), 64)", '--config.optuna.pruner=successive_halving',
        '--config.optuna.slots=2', '--config.final_epochs=1', '--progress=false']
PARAMS = {'hidden_sizes[0]', 'hidden_sizes[1]', 'l2', 'learning_rate'}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _command(out, trials, *extra):
  return [sys.executable, '-m', 'jaxmlp.launch', *ARGS, f'--config.optuna.trials={trials}',
          f'--output_dir={out}', *extra]


def _study(storage) -> optuna.Study:
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  return optuna.load_study(study_name='finetune_optuna', storage=storage)


def _sqlite(out) -> str:
  return f'sqlite:///{out}/finetune_optuna/optuna.db'


@pytest.fixture(scope='module')
def searched(tmp_path_factory):
  out = tmp_path_factory.mktemp('optuna')
  result = subprocess.run(_command(out, 10), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  return out


def test_the_study_database_holds_every_trial(searched):
  trials = _study(_sqlite(searched)).get_trials()
  assert len(trials) == 10 and [t.number for t in trials] == list(range(10))
  for t in trials:
    assert t.state in FINISHED and set(t.params) == PARAMS
    assert sorted(t.intermediate_values) == list(range(len(t.intermediate_values)))
    assert 1 <= len(t.intermediate_values) <= 3
    record = json.loads((searched / 'finetune_optuna' / 'trials' /
                         f'trial-{t.number:04d}__seed{t.number}' / 'result.json').read_text())
    assert record['state'] == t.state.name and record['epochs_trained'] == len(
        t.intermediate_values)
  report = (searched / 'finetune_optuna' / 'report.md').read_text()
  compiled = int(report.split('this worker compiled ')[1].split(' programs')[0])
  assert compiled < len(trials)   # slots were refilled, not programs rebuilt
  for figure in ('optuna_history', 'optuna_importances', 'optuna_parallel',
                 'optuna_best_curves', 'confusion_matrix'):
    assert (searched / 'finetune_optuna' / 'figures' / f'{figure}.png').is_file()
  assert '## Final model' in report


def test_a_killed_search_continues_the_same_study(tmp_path):
  # Killed (SIGKILL) right after its third trial is told, while the next trials run.
  command = _command(tmp_path, 8)
  killed_run = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, JAXMLP_FAULT='trial:3'))
  assert killed_run.returncode == -signal.SIGKILL, killed_run.stderr
  storage = _sqlite(tmp_path)
  killed = _study(storage).get_trials()
  before = {t.number: (t.state, t.value, t.params) for t in killed}
  finished = {n: v for n, v in before.items() if v[0] in FINISHED}
  interrupted = {n: v for n, v in before.items()
                 if v[0] == optuna.trial.TrialState.RUNNING}
  assert len(finished) == 3 and interrupted
  # Killed between epochs: every running trial was claimed, its slots filled.
  assert all('worker' in t.user_attrs for t in killed if t.number in interrupted)

  rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
  assert rerun.returncode == 0, rerun.stderr
  after = {t.number: t for t in _study(storage).get_trials()}
  for number, (state, value, params) in finished.items():   # kept, not repeated
    assert (after[number].state, after[number].value, after[number].params) == (
        state, value, params)
  for number, (_, _, params) in interrupted.items():         # failed, asked again
    assert after[number].state == optuna.trial.TrialState.FAIL
    assert after[number].user_attrs['interrupted']   # not counted against the budget
    [retry] = [t for t in after.values() if t.user_attrs.get('retry_of') == number]
    assert retry.params == params and retry.state in FINISHED
  assert sum(t.state in FINISHED for t in after.values()) == 8


def test_two_workers_finish_one_study_between_them(tmp_path):
  journal = tmp_path / 'study.log'
  workers = [subprocess.Popen(
      _command(tmp_path / f'out{k}', 10, f'--storage={journal}', '--cpu_devices=1',
               f'--worker_id={k}', *(['--search_only'] if k else [])),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
  outputs = [w.communicate(timeout=600) for w in workers]
  for w, (_, stderr) in zip(workers, outputs):
    assert w.returncode == 0, stderr
  trials = _study(optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(str(journal)))).get_trials()
  # Both may have seen room for the last trial and asked one: the later is failed
  # before it trains, and only the budget's 10 count.
  late = [t for t in trials if t.user_attrs.get('over_budget')]
  trials = [t for t in trials if t not in late]
  assert len({t.number for t in trials}) == len(trials) == 10   # no number used twice
  assert all(t.state in FINISHED for t in trials)
  assert len(late) <= 1 and all(t.state == optuna.trial.TrialState.FAIL and
                                t.number > max(u.number for u in trials) for t in late)
  trained = {p.name for k in (0, 1) for p in (tmp_path / f'out{k}').glob('*/trials/*')}
  assert len(trained) == 10
  assert len({t.user_attrs['worker'] for t in trials}) == 2      # both took trials
  assert 'report: ' in outputs[0][0] and 'report: ' not in outputs[1][0]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _get(url: str):
  with urllib.request.urlopen(url, timeout=5) as response:
    return json.loads(response.read())


def test_the_dashboard_serves_the_study(searched):
  port = _free_port()
  server = subprocess.Popen(
      [os.path.join(os.path.dirname(sys.executable), 'optuna-dashboard'), _sqlite(searched),
       '--host', '127.0.0.1', '--port', str(port), '--quiet'],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 60
    while True:
      try:
        studies = _get(f'http://127.0.0.1:{port}/api/studies')['study_summaries']
        break
      except OSError:
        assert server.poll() is None and time.monotonic() < deadline
        time.sleep(0.3)
    [summary] = [s for s in studies if s['study_name'] == 'finetune_optuna']
    detail = _get(f'http://127.0.0.1:{port}/api/studies/{summary["study_id"]}')
    assert len(detail['trials']) == 10
    assert all(t['intermediate_values'] for t in detail['trials'])
    assert {p['name'] for p in detail['trials'][0]['params']} == PARAMS
  finally:
    server.terminate()
    server.wait(timeout=30)
