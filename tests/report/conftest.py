"""Tiny real studies of each search, run once per test process and read by the
report's tests (frames, TensorBoard)."""

import subprocess
import sys
from pathlib import Path

import pytest

_TINY = ['--data_limit=600', '--progress=false']
TINY_STUDIES = {
    # The acceptance shape: 2 runs of 3 epochs.
    'grid': ('baseline', ['--study=baseline', '--epochs=3', '--seeds=2']),
    # max_epochs 3: a trial is continued from its parent's epoch 1; final_epochs=1:
    # the best trial retrained, so final/ is read too.
    'hyperband': ('finetune', ['--study=finetune', '--search=hyperband', '--seeds=1',
                               '--config.hyperband.max_epochs=3',
                               '--config.final_epochs=1']),
    'optuna': ('finetune_optuna', ['--study=finetune_optuna', '--epochs=2',
                                   '--config.optuna.trials=3', '--config.final_epochs=0']),
}


@pytest.fixture(scope='session', params=list(TINY_STUDIES))
def tiny_study_dir(request, tmp_path_factory) -> Path:
  """A tiny study of each search, as a user runs it."""
  name, args = TINY_STUDIES[request.param]
  cwd = tmp_path_factory.mktemp(request.param)
  result = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args, *_TINY,
                           '--output_dir=out'], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  return cwd / 'out' / name
