"""The launch/ scripts parse, print the right commands when dry-running, refuse bad usage.

None of them runs jax here: every check is a dry run or a parse, so the file stays fast.
"""

import os
from pathlib import Path
import shlex
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch'
SCRIPTS = sorted(p for p in LAUNCH.iterdir() if p.suffix in ('.sh', '.sbatch'))
STUDIES = sorted(p.stem for p in (ROOT / 'configs').glob('*.py') if not p.stem.startswith('_'))


def _bash(script, *args, env=None):
  # Outside SLURM whatever the machine running the tests is.
  base = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
  base.pop('DRY_RUN', None)
  return subprocess.run(['bash', str(LAUNCH / script), *args], cwd=ROOT,
                        env={**base, **(env or {})}, capture_output=True, text=True,
                        timeout=30)


def _lines(result):
  return [l for l in result.stdout.splitlines() if l.strip()]


def test_the_expected_scripts_exist():
  names = {p.name for p in SCRIPTS}
  assert {'run_all_local.sh', 'tpu_multihost.sh', 'slurm_multinode.sbatch',
          'device_check.sh', 'optuna_workers.sh'} <= names


def test_the_shared_helpers_parse():
  subprocess.run(['bash', '-n', str(LAUNCH / 'common.bash')], check=True, timeout=30)


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_and_strict_mode(script):
  subprocess.run(['bash', '-n', str(script)], check=True, timeout=30)
  text = script.read_text()
  assert text.startswith('#!/usr/bin/env bash\n')
  assert 'set -euo pipefail' in text


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda p: p.name)
def test_help_exits_0_with_usage(script):
  result = _bash(script.name, '--help')
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith('usage: ')


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_run_all_local_dry_run_runs_every_study_with_passthrough(how):
  args = ['--seeds=2', '--epochs=3', '--output_dir=/tmp/x y', "--config.l2=(0.1, 0.01)"]
  if how == 'flag':
    result = _bash('run_all_local.sh', '--dry-run', *args)
  else:
    result = _bash('run_all_local.sh', *args, env={'DRY_RUN': '1'})
  assert result.returncode == 0, result.stderr
  lines = _lines(result)
  assert len(lines) == len(STUDIES) >= 7
  for study, line in zip(STUDIES, lines):
    assert line.startswith(f'python -m jaxmlp.launch --study={study} ')
    # Printed so that a shell reads back exactly the words that would run.
    assert shlex.split(line)[4:] == args


def test_run_all_local_selects_studies():
  result = _bash('run_all_local.sh', '--dry-run', '--studies=init,baseline')
  assert result.returncode == 0, result.stderr
  assert _lines(result) == ['python -m jaxmlp.launch --study=init',
                            'python -m jaxmlp.launch --study=baseline']


def test_tpu_dry_run_launches_on_every_worker():
  result = _bash('tpu_multihost.sh', '--dry-run', '--tpu=my-slice', '--zone=us-central2-b',
                 '--study=finetune', '--seeds=5', "--config.l2=(0.1, 0.01)")
  assert result.returncode == 0, result.stderr
  [line] = _lines(result)
  words = shlex.split(line)
  assert words[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'my-slice']
  assert '--worker=all' in words and '--zone=us-central2-b' in words
  [command] = [w.split('=', 1)[1] for w in words if w.startswith('--command=')]
  assert shlex.split(command) == [
      'cd', 'jaxmlp', '&&', 'JAXMLP_DISTRIBUTED=1', 'python3', '-m', 'jaxmlp.launch',
      '--study=finetune', '--seeds=5', '--config.l2=(0.1, 0.01)']


def test_tpu_dry_run_setup_copies_and_installs_first():
  result = _bash('tpu_multihost.sh', '--tpu=t', '--study=baseline', '--setup',
                 env={'DRY_RUN': '1'})
  assert result.returncode == 0, result.stderr
  lines = _lines(result)
  assert len(lines) == 4
  assert 'tpu-vm scp --recurse --worker=all' in lines[1]
  assert "pip install -q 'jax[tpu]'" in shlex.split(lines[2])[-1]
  assert 'python3 -m jaxmlp.launch --study=baseline' in lines[3]
  assert all('--worker=all' in l for l in lines)


def test_slurm_dry_run_submits_then_sruns_one_task_per_node():
  result = _bash('slurm_multinode.sbatch', '--dry-run', '--study=baseline', '--seeds=2')
  assert result.returncode == 0, result.stderr
  lines = _lines(result)
  assert shlex.split(lines[0]) == ['sbatch', str(LAUNCH / 'slurm_multinode.sbatch'),
                                   '--study=baseline', '--seeds=2']
  assert lines[-1].startswith('srun --ntasks-per-node=1 ')
  assert 'env JAXMLP_DISTRIBUTED=1 python -m jaxmlp.launch --study=baseline --seeds=2' in (
      lines[-1])


def test_slurm_inside_an_allocation_passes_every_gpu_of_the_node():
  env = {'DRY_RUN': '1', 'SLURM_JOB_ID': '7', 'SLURM_JOB_NUM_NODES': '4',
         'SLURM_GPUS_ON_NODE': '8'}
  result = _bash('slurm_multinode.sbatch', '--study=init', env=env)
  assert result.returncode == 0, result.stderr
  assert _lines(result) == [
      'srun --ntasks-per-node=1 --kill-on-bad-exit=1 --nodes=4 env JAXMLP_DISTRIBUTED=1 '
      'JAXMLP_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7 python -m jaxmlp.launch --study=init']


def test_device_check_dry_run_runs_tests_then_benchmarks_into_out(tmp_path):
  result = _bash('device_check.sh', '--dry-run', env={'OUT': str(tmp_path)})
  assert result.returncode == 0, result.stderr
  # Every step runs under a time limit.
  steps = [l for l in _lines(result) if l.startswith('timeout ')]
  assert len(steps) == 7
  assert '-m pytest -q -x -n 0' in steps[1]   # one process holds the accelerator
  assert {'tests/engine/test_engine.py', 'tests/engine/test_slots.py',
          'tests/core/test_golden.py'} <= set(shlex.split(steps[1]))
  assert f'benchmarks/bench.py --json={tmp_path}/bench.json' in steps[2]
  # No devices were listed (a dry run), so the accelerator's settings are shown.
  assert ('benchmarks/search_bench.py --contenders=engine,single '
          f'--json={tmp_path}/search_bench.json --slots=32') in steps[3]
  assert ('-m jaxmlp.launch --study=finetune --search=grid --config.final_epochs=0 '
          f'--progress=false --output_dir={tmp_path}/results') in steps[4]
  assert ('-m jaxmlp.launch --study=finetune_pbt --config.final_epochs=0 --progress=false '
          f'--tensorboard=false --output_dir={tmp_path}/results') in steps[5]
  assert steps[6].startswith('timeout --kill-after=10 60 env JAX_DEFAULT_MATMUL_PRECISION')
  assert 'import test_invariance as t' in result.stdout   # the layout guarantee
  # The limits add up to 610 s, leaving a 15-minute lease room to start.
  assert sum(int(l.split()[2]) for l in steps) == 610
  assert not list(tmp_path.iterdir())  # a dry run writes nothing


@pytest.mark.parametrize('script,args', [
    ('run_all_local.sh', ['positional']),
    ('run_all_local.sh', ['--studies=nope']),
    ('run_all_local.sh', ['--study=init']),
    ('tpu_multihost.sh', ['--study=baseline']),          # no --tpu
    ('tpu_multihost.sh', ['--tpu=t']),                   # no --study
    ('tpu_multihost.sh', ['--tpu=t', '--study=baseline', 'extra']),
    ('slurm_multinode.sbatch', ['--seeds=3']),           # no --study
    ('slurm_multinode.sbatch', ['--study=init', 'extra']),
    ('device_check.sh', ['--nope']),
])
def test_bad_usage_exits_2_with_a_usage_line(script, args):
  result = _bash(script, '--dry-run', *args)
  assert result.returncode == 2
  assert result.stdout == ''
  lines = result.stderr.splitlines()
  assert lines[0].startswith('error: ')
  assert lines[-1].startswith('usage: ')


def test_bench_help():
  result = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'bench.py'), '--help'],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  for flag in ('--quick', '--json', '--ks', '--reps'):
    assert flag in result.stdout


def test_optuna_workers_dry_run_starts_n_workers_on_one_study():
  result = _bash('optuna_workers.sh', '3', '--dry-run', '--study=finetune_optuna',
                 '--storage=/tmp/s.log', '--cpu_devices=1', '--epochs=5')
  assert result.returncode == 0, result.stderr
  lines = [shlex.split(l) for l in _lines(result)]
  assert len(lines) == 3
  for k, words in enumerate(lines):
    assert words[:4] == ['python', '-m', 'jaxmlp.launch', '--search=optuna']
    assert '--storage=/tmp/s.log' in words and f'--worker_id={k}' in words
    assert ('--search_only' in words) == (k > 0)   # worker 0 retrains and reports
    assert words[-3:] == ['--study=finetune_optuna', '--cpu_devices=1', '--epochs=5']


def test_optuna_workers_share_a_journal_beside_the_study_by_default():
  result = _bash('optuna_workers.sh', '2', '--dry-run', '--study=finetune_optuna',
                 '--output_dir=/tmp/r')
  assert result.returncode == 0, result.stderr
  assert all('--storage=/tmp/r/finetune_optuna.optuna.log' in l for l in _lines(result))


@pytest.mark.parametrize('args, message', [
    (['--study=finetune_optuna'], 'give the number of workers first'),
    (['2'], 'choose a study'),
    (['2', '--study=x', '--search_only'], 'set by this script'),
])
def test_optuna_workers_refuse_bad_usage(args, message):
  result = _bash('optuna_workers.sh', *args, '--dry-run')
  assert result.returncode == 2 and message in result.stderr
