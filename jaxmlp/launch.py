"""Trains every configuration and seed of a study in parallel and writes the results.

  python -m jaxmlp.launch --study=regularization
  python -m jaxmlp.launch --study=batch_size --config.batch_size=256 --seeds=5
  python -m jaxmlp.launch --study=finetune --epochs=10 --output_dir=/tmp/results

Override any field of the study's config with --config.FIELD=VALUE. A field whose
value is a tuple is a sweep axis: --config.batch_size=256 narrows it to one value,
--config.l2='(0.1, 0.01)' to two; --config.arm=NAME runs one arm of a study.
"""

import json
import logging
import platform
import sys
import time
from pathlib import Path

from absl import app
from absl import flags
from absl import logging as absl_logging
import jax
from ml_collections import config_flags
import numpy as np

from jaxmlp import data as data_lib
from jaxmlp import engine
from jaxmlp import results
from jaxmlp import study as study_lib
from jaxmlp.errors import UserError


def _study_help() -> str:
  try:
    names = ', '.join(study_lib.available_studies())
  except UserError as e:
    names = str(e)
  return (f'The study to run: one of {names}; or the path of your own config .py file '
          '(a study is a config: see configs/).')


_STUDY = flags.DEFINE_string('study', None, _study_help())
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per configuration (0, 1, ... N-1); '
                              'every seed of every configuration trains in parallel.')
_EPOCHS = flags.DEFINE_integer('epochs', None, "Override the study's epoch count.")
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
    return [argv[0], f'--config={study_lib.config_path(name)}', *argv[1:]]
  if not _wants_help(argv) and not any(a.startswith('--config=') for a in argv):
    raise UserError(f"choose a study with --study=NAME: one of "
                    f"{', '.join(study_lib.available_studies())}")
  return argv


def _fail(message: str) -> None:
  print(f"error: {' '.join(message.split())}", file=sys.stderr)
  sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with every mistake reported as one line and exit code 2."""
  try:
    return flags.FLAGS(_study_argv(argv))
  except SystemExit as e:
    # absl exits 1 after printing --help; asking for help is no failure.
    sys.exit(0 if _wants_help(argv) else e.code)
  except (UserError, flags.Error) as e:
    _fail(str(e))
  except (AttributeError, KeyError) as e:
    # config_flags' answer to --config.FIELD for a field the config lacks.
    _fail(f'unknown config field {e}: --config.FIELD must name a field of the '
          "study's config (--helpfull lists them)")
  except Exception as e:  # pylint: disable=broad-except
    # config_flags raises plain errors for a bad config file or override type.
    _fail(f'{type(e).__name__}: {e}')


def run_study(config, *, seeds: int, output_dir: Path, mnist_split) -> list[dict]:
  """Trains every member of a study, group by group, writing results as it goes."""
  members = study_lib.expand(config, seeds)
  study_dir = output_dir / config.name
  mesh = engine.member_mesh()
  device_data = engine.put_data(mnist_split, mesh)
  results.write_json(study_dir / 'run.json', dict(
      study=config.name, seeds=seeds, config=json.loads(config.to_json()),
      devices=[str(d) for d in jax.devices()], python=platform.python_version(),
      versions={m: __import__(m).__version__ for m in ('jax', 'flax', 'optax')},
      started=time.strftime('%Y-%m-%d %H:%M:%S')))
  groups = study_lib.group(members)
  records = []
  for index, (structure, group) in enumerate(groups.items(), start=1):
    print(f'[{config.name}] program {index}/{len(groups)}: {len(group)} members '
          f'({structure.optimizer}, batch {structure.batch_size}, hidden '
          f'{structure.hidden_sizes}), {config.epochs} epochs', flush=True)
    hparams = {f: np.array([m.hparams[f] for m in group]) for f in study_lib.HPARAM_FIELDS}
    seeds_M = np.array([m.seed for m in group])
    result = engine.run_group(structure, hparams, seeds_M, device_data, config.epochs,
                              mesh, max_members=config.max_members_per_program)
    for k, member in enumerate(group):
      record = results.member_record(member, result, k,
                                     study_lib.reference_for(config, member))
      results.write_json(study_dir / 'members' / results.member_filename(member), record)
      records.append(record)
    print(f'  compiled in {result.compile_time_s[0]:.1f} s, trained in '
          f'{result.fit_time_s.max():.1f} s; test accuracy '
          f'{np.mean(result.test_accuracy) * 100:.2f}% (mean)', flush=True)
  return records


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    # absl shows INFO by default; --verbosity=0 brings it back.
    absl_logging.set_verbosity(absl_logging.WARNING)
  jax.config.update('jax_default_matmul_precision', _MATMUL_PRECISION.value)
  config = _CONFIG.value
  try:
    if _EPOCHS.value is not None:
      with config.unlocked():
        config.epochs = _EPOCHS.value
    if _SEEDS.value < 1:
      raise UserError(f'--seeds={_SEEDS.value} is impossible: run at least 1 seed')
    members = study_lib.expand(config, _SEEDS.value)
    study_lib.validate(members, study_lib.training_rows(config))
    mnist = data_lib.load(_DATA_SOURCE.value, _DATA_DIR.value,
                          verify_checksums=_DATA_CHECKSUMS.value)
    split = data_lib.split(mnist, config.validation_split)
    study_lib.validate(members, len(split.x_train))
  except UserError as e:
    _fail(str(e))
  output_dir = Path(_OUTPUT_DIR.value)
  records = run_study(config, seeds=_SEEDS.value, output_dir=output_dir, mnist_split=split)
  table = results.write_summary(output_dir / config.name, records)
  print(f'\n{table}\nresults: {output_dir / config.name}')


def run():
  # jax logs at INFO that it found no TPU on every CPU or GPU machine.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
