"""Trains every configuration and seed of a study in parallel and writes the results.

  python -m jaxmlp.launch --study=regularization
  python -m jaxmlp.launch --study=batch_size --config.batch_size=256 --seeds=5
  python -m jaxmlp.launch --study=baseline --config.learning_rate='(0.01, 0.001)'
  python -m jaxmlp.launch --study=finetune --epochs=10 --output_dir=/tmp/results

Override any field of the study's config with --config.FIELD=VALUE; a tuple of values
makes a member field a sweep axis (see jaxmlp/overrides.py); --config.arm=NAME runs
one arm of a study.
"""

import shlex
import sys
from pathlib import Path

from absl import app
from absl import flags
import ml_collections

from jaxmlp.engine import checkpoint as checkpoint_lib
from jaxmlp import api
from jaxmlp import cli
from jaxmlp.common import hosts
from jaxmlp.engine import interrupt
from jaxmlp.studies import overrides as overrides_lib
from jaxmlp.search import registry
from jaxmlp.studies import study as study_lib
from jaxmlp.common.errors import UserError, cannot_write


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
          'report, in its order, with an index report. ' + overrides_lib.HELP)


_STUDY = flags.DEFINE_string('study', None, _study_help())
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results',
                                  'Results go to OUTPUT_DIR/STUDY/.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Folder with the four MNIST IDX files (gzipped or not); default '
    '$MNIST_DIR, else a per-user cache that is filled by downloading them.')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'On a CPU: how many JAX devices its cores are split into, members '
    'sharded over them (0: one per core). Ignored by GPUs and TPUs, and when XLA_FLAGS '
    'sets --xla_force_host_platform_device_count.', lower_bound=0)
_CPU_THREADS = flags.DEFINE_integer(
    'cpu_threads', 0, "On a CPU: the threads of XLA's matmul pool, which a member's last "
    "bits depend on (0: XLA's own, one per core, or per device where they are more). "
    'Pass the same value (>= --cpu_devices) on two machines to get the same numbers on '
    'both; $PJRT_NPROC or $NPROC, when set, wins.', lower_bound=0)
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', None, "Folder of JAX's persistent compilation cache, so that a "
    'repeated run compiles nothing; default $XDG_CACHE_HOME/jaxmlp/jax_cache (else '
    '~/.cache/jaxmlp/jax_cache); off: no cache. The cache never changes the numbers.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar per compiled '
                              'program; --progress=false for logs and CI.')
_TENSORBOARD = flags.DEFINE_bool(
    'tensorboard', True, 'Write live TensorBoard event files (a run per member, its '
    'hyperparameters in the HParams dashboard) to OUTPUT_DIR/STUDY/tensorboard: watch '
    'with tensorboard --logdir OUTPUT_DIR/STUDY. --tensorboard=false: none.')
_CHECKPOINT_EVERY = flags.DEFINE_string('checkpoint_every', 'auto', checkpoint_lib.POLICY_HELP)
_STORAGE = flags.DEFINE_string(
    'storage', None, '--search=optuna: where the Optuna study lives: an RDB URL '
    '(postgresql://..., mysql://..., sqlite:///...) or a journal file (PATH.log) that '
    'several workers share; default OUTPUT_DIR/STUDY/optuna.db (SQLite).')
_WORKER_ID = flags.DEFINE_integer(
    'worker_id', 0, '--search=optuna: this worker\'s number among several on one study '
    '(it offsets the sampler\'s seed).', lower_bound=0)
_SEARCH_ONLY = flags.DEFINE_bool(
    'search_only', False, '--search=optuna: an extra worker: run trials, then stop (the '
    'worker without this flag waits for the study to end, retrains the best '
    'configuration and writes the report).')

# Shorthands for config fields (a given flag sets the field; else the study's value).
_SHORTHANDS = {
    'seeds': flags.DEFINE_integer('seeds', None, 'Seeds per configuration (0, 1, ... N-1; '
                                  'the study\'s config says 3); every seed of every '
                                  'configuration trains in parallel. = --config.seeds'),
    'epochs': flags.DEFINE_integer('epochs', None, "Override the study's epoch count (and "
                                   "its final retraining's, where it has one)."),
    'search': flags.DEFINE_enum('search', None, list(registry.SEARCHES),
                                registry.search_help()),
    'final_batch_size': flags.DEFINE_integer(
        'final_batch_size', None, 'Batch size of the final retraining of the best '
        "configuration (studies with final_epochs > 0; default 32, Keras' default, as "
        'in the original). = --config.final_batch_size'),
    'final_shuffle': flags.DEFINE_bool(
        'final_shuffle', None, "Shuffle in the final retraining (default: yes, Keras' "
        'default, as in the original). = --config.final_shuffle'),
    'matmul_precision': flags.DEFINE_enum(
        'matmul_precision', None, list(study_lib.MATMUL_PRECISIONS),
        'Matmul precision (default float32, which reproduces Keras; the others are faster '
        'on GPU/TPU). = --config.matmul_precision'),
    'data_source': flags.DEFINE_enum(
        'data_source', None, list(study_lib.DATA_SOURCES),
        'idx (default): the original IDX files in Keras row order. tfds: '
        'tensorflow-datasets (pip install "jaxmlp[tfds]"); its example order differs '
        'from the IDX/Keras order, so runs are not row-for-row comparable to the original. '
        '= --config.data_source'),
    'data_checksums': flags.DEFINE_bool(
        'data_checksums', None, 'Verify the IDX files against the MNIST originals\' '
        'SHA-256 sums (default); --nodata_checksums loads another IDX dataset (e.g. '
        'Fashion-MNIST). = --config.data_checksums'),
    'data_limit': flags.DEFINE_integer(
        'data_limit', None, 'Use only the first N rows of the training, validation and '
        'test sets (0: all): quick smoke runs, not comparable with the original. '
        '= --config.data_limit', lower_bound=0),
}

_overrides: list[tuple[str, str]] = []


def _wants_help(argv: list[str]) -> bool:
  return any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser for the flags, ours for --config.FIELD; every mistake is reported as
  one line and exit code 2."""
  try:
    argv, found = overrides_lib.split_argv(argv)
    _overrides[:] = found
    rest = flags.FLAGS(argv)
    if not _wants_help(argv) and not _STUDY.value:
      raise UserError(f"choose a study with --study=NAME: one of "
                      f"{', '.join(study_lib.available_studies())}")
    if _STUDY.value == ALL and found:
      raise UserError('--config overrides need a single study: drop them, or run the '
                      'studies one by one')
    return rest
  except SystemExit as e:
    # absl exits 1 after printing --help; asking for help is no failure.
    sys.exit(0 if _wants_help(argv) else e.code)
  except (UserError, flags.Error) as e:
    cli.fail(str(e))


def configure(config: ml_collections.ConfigDict,
              overrides: list[tuple[str, str]] = ()) -> ml_collections.ConfigDict:
  """The study's config, every search's section in it, with the command line's
  overrides and shorthands applied."""
  return overrides_lib.apply_shorthands(
      overrides_lib.apply(registry.complete(config), list(overrides),
                          registry.renamed_fields()),
      {field: flag.value for field, flag in _SHORTHANDS.items() if flag.present})


def _studies() -> list[tuple[ml_collections.ConfigDict, Path]]:
  """(config, its file) for each study this command runs, configured."""
  names = ALL_STUDIES if _STUDY.value == ALL else (_STUDY.value,)
  return [(configure(study_lib.load_config(n), _overrides), study_lib.config_path(n))
          for n in names]


def _reported(path: Path) -> None:
  """The report's path; then, for a study whose constraints no configuration
  satisfies, that news (the command's last line, as it is the study's answer)."""
  print(f'report: {path}', flush=True)
  from jaxmlp.report import pareto  # pylint: disable=import-outside-toplevel
  news = pareto.verdict(path.parent)
  if news:
    print(news, flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.guard_streams()
  cli.quiet_logs()
  command = shlex.join(['python', '-m', 'jaxmlp.launch', *sys.argv[1:]])
  output_dir = Path(_OUTPUT_DIR.value)
  try:
    studies = _studies()
    trained = {}   # study name -> its members' records, for --study=all's index
    api.run_configs(studies, output_dir=output_dir, command=command,
                    on_records=trained.__setitem__,
                    data_dir=_DATA_DIR.value, checkpoint_every=_CHECKPOINT_EVERY.value,
                    compilation_cache=_COMPILATION_CACHE.value, cpu_devices=_CPU_DEVICES.value,
                    cpu_threads=_CPU_THREADS.value,
                    on_report=_reported,
                    progress=_PROGRESS.value, tensorboard=_TENSORBOARD.value,
                    storage=_STORAGE.value, worker_id=_WORKER_ID.value,
                    search_only=_SEARCH_ONLY.value)
    if _STUDY.value == ALL and hosts.is_primary():
      from jaxmlp.report import report  # pylint: disable=import-outside-toplevel
      done = [(config.name, output_dir / config.name, trained[config.name])
              for config, _ in studies]
      print(f'index: {report.write_index(output_dir, done, command)}')
  except UserError as e:
    cli.fail(str(e))
  except OSError as e:
    # A write no check above covers (a figure, an event file) on a full disk or a
    # folder made read-only mid-run: what was written before it stays.
    cli.fail(cannot_write(Path(e.filename), e) if e.filename else
             f'{e.strerror or e}: check that {output_dir} is writable and has room')
  except KeyboardInterrupt as e:
    stopped = e if isinstance(e, interrupt.Stopped) else interrupt.Stopped(2)
    where = f' {stopped.where};' if stopped.where else ''
    print(f'\nstopped by {stopped}:{where} finished programs are saved in {output_dir}; '
          'rerun the same command to continue', file=sys.stderr)
    sys.exit(stopped.exit_code)


def run():
  with interrupt.remembered():
    app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
