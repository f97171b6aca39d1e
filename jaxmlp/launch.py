"""Trains every configuration and seed of a study in parallel and writes the results.

  python -m jaxmlp.launch --study=regularization
  python -m jaxmlp.launch --study=batch_size --config.batch_size=256 --seeds=5
  python -m jaxmlp.launch --study=finetune --epochs=10 --output_dir=/tmp/results

Override any field of the study's config with --config.FIELD=VALUE. A field whose
value is a tuple is a sweep axis: --config.batch_size=256 narrows it to one value,
--config.l2='(0.1, 0.01)' to two; --config.arm=NAME runs one arm of a study.
"""

import dataclasses
import os
import shlex
import sys
from pathlib import Path

from absl import app
from absl import flags
import jax
import ml_collections
from ml_collections import config_flags

from jaxmlp import cli
from jaxmlp import data as data_lib
from jaxmlp import engine
from jaxmlp import hyperband
from jaxmlp import interrupt
from jaxmlp import report
from jaxmlp import results
from jaxmlp import runner
from jaxmlp import study as study_lib
from jaxmlp.errors import UserError


ALL = 'all'
# The original report's order; `baseline` is batch_size's batch-256 arm, so not repeated.
ALL_STUDIES = ('batch_size', 'rmsprop', 'init', 'regularization', 'dropout', 'finetune')


def _study_help() -> str:
  try:
    names = ', '.join(study_lib.available_studies())
  except UserError as e:
    names = str(e)
  return (f'The study to run: one of {names}; or the path of your own config .py file '
          f'(a study is a config: see configs/); or {ALL}: every study of the original '
          'report, in its order, with an index report.')


_STUDY = flags.DEFINE_string('study', None, _study_help())
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per configuration (0, 1, ... N-1); '
                              'every seed of every configuration trains in parallel.')
_EPOCHS = flags.DEFINE_integer('epochs', None, "Override the study's epoch count (and "
                               "its final retraining's, where it has one).")
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results',
                                  'Results go to OUTPUT_DIR/STUDY/.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Folder with the four MNIST IDX files (gzipped or not); default '
    '$MNIST_DIR, else a per-user cache that is filled by downloading them.')
_DATA_SOURCE = flags.DEFINE_enum(
    'data_source', 'idx', list(data_lib.SOURCES),
    'idx: the original IDX files in Keras row order (default). tfds: '
    'tensorflow-datasets (pip install "jaxmlp[tfds]"); its example order differs '
    'from the IDX/Keras order, so runs are not row-for-row comparable to the original.')
_DATA_CHECKSUMS = flags.DEFINE_bool(
    'data_checksums', True, 'Verify the IDX files against the MNIST originals\' '
    'SHA-256 sums; --nodata_checksums loads another IDX dataset (e.g. Fashion-MNIST).')
_MATMUL_PRECISION = flags.DEFINE_enum(
    'matmul_precision', 'float32', ['float32', 'tensorfloat32', 'bfloat16'],
    'Matmul precision; float32 reproduces Keras, the others are faster on GPU/TPU.')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'On a CPU: how many JAX devices its cores are split into, members '
    'sharded over them (0: one per core). Ignored by GPUs and TPUs, and when XLA_FLAGS '
    'sets --xla_force_host_platform_device_count.', lower_bound=0)
_DATA_LIMIT = flags.DEFINE_integer(
    'data_limit', 0, 'Use only the first N rows of the training, validation and test sets '
    '(0: all): quick smoke runs, not comparable with the original.', lower_bound=0)
_SEARCH = flags.DEFINE_enum(
    'search', 'grid', ['grid', 'hyperband'],
    'grid: every configuration x seed. hyperband: keras_tuner\'s Hyperband over the '
    'configurations (the original\'s finetune search), each round trained at once.')
_FINAL_BATCH_SIZE = flags.DEFINE_integer(
    'final_batch_size', 32, 'Batch size of the final retraining of the best configuration '
    '(studies with final_epochs > 0); 32 is Keras\' default, as in the original.')
_FINAL_SHUFFLE = flags.DEFINE_bool(
    'final_shuffle', True, 'Shuffle in the final retraining (Keras\' default, as in the '
    'original).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar per compiled '
                              'program; --progress=false for logs and CI.')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None,
    'Set by --study. Override any field of the study\'s config with '
    '--config.FIELD=VALUE, e.g. --config.learning_rate=0.01. A field whose value '
    'is a tuple is a sweep axis: --config.batch_size=256 narrows it to one value, '
    "--config.l2='(0.1, 0.01)' to two. --config.arm=NAME runs one arm of a study.",
    lock_config=True)


def _wants_help(argv: list[str]) -> bool:
  return any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv)


def _study_argv(argv: list[str]) -> list[str]:
  """Turns --study=NAME into the --config=FILE that config_flags loads."""
  argv = list(argv)
  for i, arg in enumerate(argv[1:], start=1):
    if arg == '--':
      break
    if arg.startswith('--study='):
      name = arg.split('=', 1)[1]
    elif arg == '--study' and i + 1 < len(argv):
      name = argv[i + 1]
    else:
      continue
    if name == ALL:
      if any(a.startswith('--config') for a in argv):
        raise UserError('--config overrides need a single study: drop them, or run '
                        'the studies one by one')
      return argv
    return [argv[0], f'--config={study_lib.config_path(name)}', *argv[1:]]
  if not _wants_help(argv) and not any(a.startswith('--config=') for a in argv):
    raise UserError(f"choose a study with --study=NAME: one of "
                    f"{', '.join(study_lib.available_studies())}")
  return argv


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with every mistake reported as one line and exit code 2."""
  try:
    return flags.FLAGS(_study_argv(argv))
  except SystemExit as e:
    # absl exits 1 after printing --help; asking for help is no failure.
    sys.exit(0 if _wants_help(argv) else e.code)
  except (UserError, flags.Error) as e:
    cli.fail(str(e))
  except (AttributeError, KeyError) as e:
    # config_flags' answer to --config.FIELD for a field the config lacks.
    cli.fail(f'unknown config field {e}: --config.FIELD must name a field of the '
          "study's config (--helpfull lists them)")
  except Exception as e:  # pylint: disable=broad-except
    # config_flags raises plain errors for a bad config file or override type.
    cli.fail(f'{type(e).__name__}: {e}')


def _studies() -> list[tuple[ml_collections.ConfigDict, Path]]:
  """(config, its file) for each study this command runs."""
  if _STUDY.value == ALL:
    return [(study_lib.load_config(n), study_lib.config_path(n)) for n in ALL_STUDIES]
  return [(_CONFIG.value, Path(config_flags.get_config_filename(flags.FLAGS['config'])))]


def _validate(config, rows: int) -> None:
  """The study's members, and those its final retraining would train, before any run."""
  study_lib.validate(study_lib.expand(config, _SEEDS.value), rows)
  if config.final_epochs:
    final = [dataclasses.replace(m, values=dict(m.values, batch_size=_FINAL_BATCH_SIZE.value))
             for m in study_lib.expand(config, 1)]
    try:
      study_lib.validate(final, rows)
    except UserError as e:
      raise UserError(str(e).replace('--config.batch_size', '--final_batch_size')) from None


def _run(config, source: Path, split, *, command: str, output_dir: Path) -> Path:
  """One study: its search, then its final retraining if it has one; returns the report."""
  run_data = dict(source=_DATA_SOURCE.value, limit=_DATA_LIMIT.value,
                  checksums=_DATA_CHECKSUMS.value)
  common = dict(seeds=_SEEDS.value, output_dir=output_dir, progress=_PROGRESS.value)
  study_dir = output_dir / config.name
  records = trials = final = None
  if _SEARCH.value == 'hyperband':
    trials = runner.run_hyperband(config, split, data=run_data, **common)
    best = hyperband.best_trial(trials, config.objective).configuration
  else:
    records = runner.run_study(config, split, data=run_data, **common)
    print(f'\n{results.write_summary(study_dir, records)}')
    label = report.best_label(report.by_configuration(records), config.objective)
    best = next(m for m in study_lib.expand(config, 1) if m.label == label)
  if config.final_epochs:
    final = runner.run_final(config, split, best, batch_size=_FINAL_BATCH_SIZE.value,
                             shuffle=_FINAL_SHUFFLE.value, **common)
  return report.write_report(study_dir, config, split, command=command, source=source,
                             records=records, trials=trials, final=final)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.quiet_logs()
  if os.environ.get('JAXMLP_DISTRIBUTED') == '1':
    # One process per host (launch/): members shard over every device of every host.
    # Under SLURM, jax would give each process only GPU $SLURM_LOCALID; the sbatch
    # launcher lists all of the node's GPUs instead.
    ids = os.environ.get('JAXMLP_LOCAL_DEVICE_IDS')
    jax.distributed.initialize(
        local_device_ids=[int(i) for i in ids.split(',')] if ids else None)
  engine.use_cpu_cores(_CPU_DEVICES.value)
  jax.config.update('jax_default_matmul_precision', _MATMUL_PRECISION.value)
  command = shlex.join(['python', '-m', 'jaxmlp.launch', *sys.argv[1:]])
  output_dir = Path(_OUTPUT_DIR.value)
  try:
    if _SEEDS.value < 1:
      raise UserError(f'--seeds={_SEEDS.value} is impossible: run at least 1 seed')
    studies = _studies()
    for config, _ in studies:
      if _EPOCHS.value is not None:
        with config.unlocked():
          config.epochs = _EPOCHS.value
          config.final_epochs = _EPOCHS.value if config.final_epochs else 0
      _validate(config, study_lib.training_rows(config))
    mnist = data_lib.load(_DATA_SOURCE.value, _DATA_DIR.value,
                          verify_checksums=_DATA_CHECKSUMS.value)
    splits = [data_lib.head(data_lib.split(mnist, config.validation_split), _DATA_LIMIT.value)
              for config, _ in studies]
    for (config, _), split in zip(studies, splits):
      _validate(config, len(split.x_train))
    for (config, source), split in zip(studies, splits):
      interrupt.raise_if_requested()
      print(f'report: {_run(config, source, split, command=command, output_dir=output_dir)}',
            flush=True)
    if _STUDY.value == ALL:
      done = [(config.name, output_dir / config.name) for config, _ in studies]
      print(f'index: {report.write_index(output_dir, done, command)}')
  except UserError as e:
    cli.fail(str(e))
  except KeyboardInterrupt:
    print(f'\ninterrupted: finished programs are saved in {output_dir}; rerun the same '
          'command to finish the rest', file=sys.stderr)
    sys.exit(130)


def run():
  with interrupt.remembered():
    app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
