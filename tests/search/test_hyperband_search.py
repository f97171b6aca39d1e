"""--search=hyperband end to end: a search killed after a trial's score reached the
oracle continues to the same trials and scores as one never interrupted."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax

FIXTURES = pathlib.Path(__file__).parents[1] / 'store' / 'fixtures'
ARGS = ['--study=finetune', '--search=hyperband', '--seeds=1', '--data_limit=600',
        '--epochs=1', "--config.hidden_sizes=((64, 256),)", '--config.l2=1e-6',
        '--config.hyperband.max_epochs=3', '--config.final_epochs=0', '--progress=false']


def _launch(out, **env):
  return subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *ARGS, f'--output_dir={out}'],
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, **env))


def test_a_killed_search_continues_to_the_same_trials(tmp_path):
  whole = _launch(tmp_path / 'whole')
  assert whole.returncode == 0, whole.stderr
  # Killed once the second of the first round's three trials is reported.
  killed = _launch(tmp_path / 'killed', JAXMLP_FAULT='trial:2')
  assert killed.returncode == -signal.SIGKILL, killed.stderr
  assert not (tmp_path / 'killed' / 'finetune' / 'trials.csv').exists()
  rerun = _launch(tmp_path / 'killed')
  assert rerun.returncode == 0, rerun.stderr
  assert 'bracket 1 round 0] program 1/1: 3 members' in rerun.stdout
  assert 'complete on disk, skipped' in rerun.stdout
  trials = lambda out: (out / 'finetune' / 'trials.csv').read_text()
  assert trials(tmp_path / 'killed') == trials(tmp_path / 'whole')
  assert len(trials(tmp_path / 'whole').splitlines()) == 1 + 4
  if jax.default_backend() == 'cpu':   # the fixture holds CPU numbers
    _assert_the_release_before_wrote_the_same(tmp_path / 'whole')


def _assert_the_release_before_wrote_the_same(out):
  """The continued trial's result.json, as the release before wrote it for this run."""
  old = json.loads((FIXTURES / 'hyperband_trial.json').read_text())
  written = json.loads((out / 'finetune' / 'trials' /
                        'trial-0003_hidden_sizes=64x256_learning_rate=0.001__seed0' /
                        'result.json').read_text())
  timing = ('fit_time_s', 'compile_time_s', 'version')
  # The fixture holds one x86 CPU's numbers; XLA's CPU kernels for another instruction
  # set round some sums differently in the last bits (README: what is guaranteed), so
  # floats are held to float32's precision and everything else exactly.
  assert _rounded({k: v for k, v in written.items() if k not in timing}) == _rounded(
      {k: v for k, v in old.items() if k not in timing})


def _rounded(x):
  if isinstance(x, float):
    return float(f'{x:.5g}')
  if isinstance(x, dict):
    return {k: _rounded(v) for k, v in x.items()}
  if isinstance(x, list):
    return [_rounded(v) for v in x]
  return x
