"""Reloads a saved member and evaluates it: its test loss/accuracy, or predictions.

  python -m jaxmlp.evaluate --run=results/init/members/init__seed0
  python -m jaxmlp.evaluate --run=DIR --images=t10k-images-idx3-ubyte.gz --limit=20
"""

import json
from pathlib import Path

from absl import app
from absl import flags
import jax

from jaxmlp import cli
from jaxmlp import data as data_lib
from jaxmlp import results
from jaxmlp import train
from jaxmlp.errors import UserError


_RUN = flags.DEFINE_string('run', None, 'A saved member: OUTPUT_DIR/STUDY/members/NAME.')
_IMAGES = flags.DEFINE_string('images', None, 'An IDX images file (gzipped or not) to '
                              'predict; without it, the test set is evaluated.')
_LIMIT = flags.DEFINE_integer('limit', 0, 'Predict only the first N images (0: all).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'MNIST folder, as for jaxmlp.launch.')
_DATA_SOURCE = flags.DEFINE_enum('data_source', 'idx', list(data_lib.SOURCES),
                                 'Where MNIST comes from, when the run folder does not '
                                 'record it (its run.json does).')


def main(argv):
  del argv
  cli.quiet_logs()
  try:
    if not _RUN.value:
      raise UserError('pass --run=OUTPUT_DIR/STUDY/members/NAME')
    record, structure, hparams, params = results.load_member(Path(_RUN.value))
    if _IMAGES.value:
      images = data_lib.read_idx(_IMAGES.value)
      if images.ndim != 3:
        raise UserError(f'{_IMAGES.value} holds no images (an idx3 file is needed)')
      images = images.reshape(len(images), -1)[:_LIMIT.value or None]
      for i, label in enumerate(train.predict(params['final'], images, structure)):
        print(f'{i}\t{label}')
      return
    # The run's own data (source, --data_limit), as recorded beside its members.
    run_file = Path(_RUN.value).resolve().parents[1] / 'run.json'
    data = json.loads(run_file.read_text()).get('data', {}) if run_file.is_file() else {}
    source = data.get('source', _DATA_SOURCE.value)
    split = data_lib.head(
        data_lib.split(data_lib.load(source, _DATA_DIR.value),
                       record['config']['validation_split']), data.get('limit', 0))
  except UserError as e:
    cli.fail(str(e))
  loss, accuracy, _ = jax.jit(train.evaluate, static_argnames='structure')(
      params['final'], split.x_test, split.y_test, hparams, structure=structure)
  loss, accuracy = float(loss), float(accuracy)
  same = loss == record['test_loss'] and accuracy == record['test_accuracy']
  print(json.dumps(dict(run=_RUN.value, test_loss=loss, test_accuracy=accuracy,
                        recorded_test_loss=record['test_loss'],
                        recorded_test_accuracy=record['test_accuracy'],
                        identical=same)))


if __name__ == '__main__':
  app.run(main)
