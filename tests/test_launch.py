"""The command line, as a user meets it: from any folder, errors as one line, exit 2."""

import json
import os
import subprocess
import sys

import pytest


def _launch(args, cwd, env=None):
  env = {**os.environ, **(env or {})}
  return subprocess.run([sys.executable, '-m', 'jaxmlp.launch', *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=600)


# One case per way a command line can be refused, each as a user meets it.
@pytest.mark.parametrize('args,message', [
    (['--study=nope'], "unknown study 'nope'"),
    ([], 'choose a study with --study=NAME'),
    (['--study=baseline', '--bogus=1'], "Unknown command line flag 'bogus'"),
    (['--study=baseline', '--config.learning_rate=(0.1, x)'], 'is not a number'),
    (['--study=baseline', '--data_dir=/nonexistent'], 'MNIST not found'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
  env = {'JAXMLP_CACHE_DIR': str(tmp_path / 'cache')}
  if '--data_dir=/nonexistent' in args:
    # Offline: no mirror can be reached, and none is tried beyond loopback.
    env['JAXMLP_MNIST_MIRRORS'] = 'http://127.0.0.1:9/'
  result = _launch([*args, f'--output_dir={tmp_path}/out'], tmp_path, env)
  assert result.returncode == 2, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  # Only absl's warnings (a 'W' line, e.g. that --data_dir lacks the files) may precede it.
  assert all(l.startswith('W') for l in lines[:-1]), result.stderr
  assert lines[-1].startswith('error: ') and message in lines[-1]
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'out').exists()  # refused before anything ran


# The rest of what is refused before anything runs, through the same parsing and
# checks, in this process (a process each costs seconds).
@pytest.mark.parametrize('args,message', [
    (['--study=batch_size', '--config.batch_size=0'], 'batch size must be'),
    (['--study=batch_size', '--config.batch_size=48001'], 'from 1 to 48000'),
    (['--study=baseline', '--seeds=0'], 'run at least 1 seed'),
    (['--study=baseline', '--checkpoint_every=often'], 'is not a checkpoint interval'),
    (['--study=baseline', '--config.learning_rate=-0.001'], 'learning rate'),
    (['--study=regularization', '--config.l2=-0.1'], 'alpha must be'),
    (['--study=dropout', '--config.l1=-1'], 'alpha must be'),
    (['--study=dropout', '--config.dropout_rate=1.0'], r'dropout rate must be in [0, 1)'),
    (['--study=dropout', '--config.dropout_rate=-0.5'], r'dropout rate must be in [0, 1)'),
    (['--study=baseline', '--config.batch_size=big'], '--config.batch_size=big'),
    (['--study=baseline', '--config.nofield=1'], 'unknown config field'),
    (['--study=baseline', '--epochs=0'], 'at least 1 epoch'),
    (['--study=all', '--config.l2=0.1'], '--config overrides need a single study'),
    (['--study=finetune', '--config.objective=f1'], 'val_accuracy, val_loss, val_f1'),
    (['--study=finetune', '--config.hyperband.factor=1'],
     '--config.hyperband.factor=1 is impossible: give a whole number >= 2'),
    (['--study=baseline', '--data_limit=-1'], '--data_limit'),
    (['--study=baseline', '--cpu_devices=-1'], '--cpu_devices'),
    (['--study=finetune', '--final_batch_size=0'], 'final_batch_size=0 is impossible'),
    (['--study=finetune', '--final_batch_size=48001'], '--final_batch_size=48001 is impossible'),
    (['--study=baseline', '--config.seeds=(1, 2)'], 'not a sweep axis'),
    (['--study=baseline', '--config.l2=()'], 'empty sweep axis'),
    (['--study=baseline', '--config.reference=1'], 'set in the study file only'),
    (['--study=baseline', '--config.optimizer=(adam, adagrad)'], 'adam, rmsprop, sgd'),
    (['--study=baseline', '--config.search=random'], 'grid, hyperband'),
    (['--study=baseline', '--search=hyperband'], 'sweep axes that form a grid'),
    (['--study=baseline', '--config.hidden_sizes=(128, 0)'], 'positive layer widths'),
    (['--study=finetune_pbt', '--config.pbt_population=8'],
     '--config.pbt_population is now --config.pbt.population: pass '
     '--config.pbt.population=8'),
    (['--study=finetune_pbt', '--config.pbt.populaton=8'], "unknown setting 'populaton'"),
    (['--study=finetune_pbt', '--config.pbt.factors=(0.8, -1)'], 'pbt.factors'),
    (['--study=finetune_pbt', '--config.pbt.quantile=0.7'], 'give a number from 0 to 0.5'),
    (['--study=finetune_pbt', '--config.bohb.x=1'], "unknown config section 'bohb'"),
    (['--study=finetune_pb2', '--config.l2=(1e-6, 1e-4)'], '--search=pb2 explores ranges'),
    (['--study=baseline', '--config.name=../x'], "a study's name is one folder name"),
    (['--study=baseline', "--config.name=''"], "a study's name is one folder name"),
    (['--study=finetune_optuna', '--config.batch_size=int(1.5, 3)'],
     'an integer range needs whole-number bounds, got 1.5, 3'),
])
def test_what_is_refused_before_anything_runs(tmp_path, capsys, args, message):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from jaxmlp import launch  # pylint: disable=g-import-not-at-top
  flags.FLAGS.unparse_flags()
  with pytest.raises(SystemExit) as exit_:
    launch.main(launch.parse_flags(['jaxmlp.launch', *args,
                                    f'--output_dir={tmp_path}/out']))
  assert exit_.value.code == 2
  lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
  assert lines[-1].startswith('error: ') and message in lines[-1], lines
  assert not (tmp_path / 'out').exists()


def test_help_lists_the_studies(tmp_path):
  result = _launch(['--help'], tmp_path)
  assert result.returncode == 0
  for name in ('batch_size', 'rmsprop', 'init', 'regularization', 'dropout', 'finetune'):
    assert name in result.stdout
  assert '--config.FIELD=VALUE' in result.stdout
  assert "--config.learning_rate='(0.01, 0.001)'" in result.stdout  # a sweep axis


# What --help must not import: each takes long to import and only a run needs it.
_SLOW_TO_IMPORT = ('matplotlib', 'seaborn', 'scipy', 'optuna', 'orbax')


def test_help_imports_no_plotting_search_or_checkpoint_modules(tmp_path):
  show_modules = (
      'import runpy, sys\n'
      'sys.argv = ["jaxmlp.launch", "--help"]\n'
      'try:\n'
      '  runpy.run_module("jaxmlp.launch", run_name="__main__")\n'
      'except SystemExit:\n'
      '  pass\n'
      'print("MODULES", *sorted({m.split(".")[0] for m in sys.modules}))\n')
  result = subprocess.run([sys.executable, '-c', show_modules], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  modules = result.stdout.split('MODULES')[-1].split()
  assert 'jax' in modules   # the check can see what was imported
  assert not set(_SLOW_TO_IMPORT) & set(modules)


_TINY_RUN = ['--study=baseline', '--epochs=1', '--seeds=1', '--data_limit=600',
             '--progress=false']


def _program_lines(result):
  return [l for l in result.stdout.splitlines() if '] program ' in l and 'compiled in' in l]


def test_a_repeated_run_compiles_nothing(tmp_path):
  cache = tmp_path / 'jax_cache'
  lines = []
  for run in ('first', 'second'):
    result = _launch([*_TINY_RUN, f'--output_dir={tmp_path}/{run}',
                      f'--compilation_cache={cache}'], tmp_path)
    assert result.returncode == 0, result.stderr
    lines.append(_program_lines(result))
  assert lines[0] and lines[1]
  assert not any('(cached)' in l for l in lines[0])
  assert all('(cached)' in l for l in lines[1])
  assert any(cache.iterdir())


def test_compilation_cache_off_leaves_no_cache(tmp_path):
  home = tmp_path / 'home'
  result = _launch([*_TINY_RUN, f'--output_dir={tmp_path}/out', '--compilation_cache=off'],
                   tmp_path, {'HOME': str(home), 'XDG_CACHE_HOME': str(home / '.cache')})
  assert result.returncode == 0, result.stderr
  assert _program_lines(result)
  assert not (home / '.cache' / 'jaxmlp' / 'jax_cache').exists()


def test_init_study_end_to_end(init_run):
  """N(10) kernels + SGD: every seed predicts one class (11.35%), loss about 2.30.

  A clipped cross-entropy would give about 14.5 and 10.3% instead.
  """
  study_dir = init_run
  records = [json.loads(p.read_text())
             for p in sorted((study_dir / 'members').glob('*/result.json'))]
  assert [r['seed'] for r in records] == [0, 1, 2]
  for r in records:
    assert r['test_accuracy'] == pytest.approx(0.1135, abs=1e-6)
    assert r['test_loss'] == pytest.approx(2.30, abs=0.01)
    assert r['weight_updates'] == 5 * 188
    assert len(r['history']['val_loss']) == 5 and not r['diverged']
    assert r['config']['kernel_init'] == 'normal' and r['config']['init_mean'] == 10.0
    assert r['reference'] == {'test_accuracy': 0.1134, 'test_loss': 2.3}
  summary = (study_dir / 'summary.md').read_text()
  assert '| init | 3 | 11.35 ± 0.00 | 11.34 |' in summary
  assert (study_dir / 'summary.csv').read_text().startswith('configuration,seeds,')
  run = json.loads((study_dir / 'run.json').read_text())
  assert run['config']['epochs'] == 5 and run['config']['seeds'] == 3
  if not {'PJRT_NPROC', 'NPROC'} & set(os.environ):   # XLA's own pool: the cores
    assert run['cpu_threads'] == max(len(os.sched_getaffinity(0)), len(run['devices']))
    assert f"XLA:CPU threads {run['cpu_threads']}" in (study_dir / 'report.md').read_text()
  assert not list(study_dir.rglob('*.tmp'))


def test_terminal_streams_are_not_the_output_folder(tmp_path):
  """stdout and stderr full (/dev/full) and an output folder whose name is not UTF-8:
  the run ends well and writes every file. Where the table is the output (results),
  a reader gone ends it quietly, and a full stdout is one line."""
  out = os.fsencode(tmp_path) + b'/out\xff'
  with open('/dev/full', 'wb') as full:
    run = subprocess.run([sys.executable, '-m', 'jaxmlp.launch', '--study=baseline',
                          '--epochs=1', '--seeds=1', '--data_limit=600',
                          b'--output_dir=' + out], stdout=full, stderr=full, timeout=600)
  assert run.returncode == 0
  study = os.path.join(out, b'baseline')
  assert {b'report.md', b'summary.csv', b'run.json'} <= set(os.listdir(study))
  assert out in open(os.path.join(study, b'report.md'), 'rb').read()
  read_end, write_end = os.pipe()
  os.close(read_end)   # a reader gone before the table is written, as `| head` leaves it
  closed = subprocess.run([sys.executable, '-m', 'jaxmlp.results', study], stdout=write_end,
                          stderr=subprocess.PIPE, timeout=300)
  os.close(write_end)
  assert closed.returncode == 0 and closed.stderr == b''
  with open('/dev/full', 'wb') as full:
    refused = subprocess.run([sys.executable, '-m', 'jaxmlp.results', study], stdout=full,
                             stderr=subprocess.PIPE, timeout=300)
  assert refused.returncode == 2 and refused.stderr == (
      b'error: cannot write the table to stdout (No space left on device): pass '
      b'--output=FILE\n')
