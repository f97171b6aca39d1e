"""Reloads a saved member and evaluates it: its test loss/accuracy, or predictions.

  python -m jaxmlp.evaluate --run=results/init/members/init__seed0
  python -m jaxmlp.evaluate --run=DIR --images=t10k-images-idx3-ubyte.gz --limit=20

The test set is the one the run used: its data source, checksum setting, validation
split and row limit, as its run.json records them.
"""

import json
from pathlib import Path

from absl import app
from absl import flags

from jaxmlp import cli
from jaxmlp.data import mnist as data_lib
from jaxmlp import pipeline
from jaxmlp.store import folders
from jaxmlp.core import train
from jaxmlp.common.errors import UserError


_RUN = flags.DEFINE_string('run', None, 'A saved member: OUTPUT_DIR/STUDY/members/NAME.')
_IMAGES = flags.DEFINE_string('images', None, 'An IDX images file (gzipped or not) to '
                              'predict; without it, the test set is evaluated.')
_LIMIT = flags.DEFINE_integer('limit', 0, 'Predict only the first N images (0: all).',
                              lower_bound=0)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'MNIST folder, as for jaxmlp.launch.')


def main(argv):
  del argv
  cli.guard_streams()
  cli.quiet_logs()
  try:
    if not _RUN.value:
      raise UserError('pass --run=OUTPUT_DIR/STUDY/members/NAME')
    member_dir = Path(_RUN.value)
    if _IMAGES.value:
      _, structure, _, params = folders.load_member(member_dir)
      images = data_lib.read_idx(_IMAGES.value)
      if images.ndim != 3:
        raise UserError(f'{_IMAGES.value} holds no images (an idx3 file is needed)')
      if images.shape[1:] != (28, 28):
        raise UserError(f'{_IMAGES.value} holds {images.shape[1]}x{images.shape[2]} images; '
                        'the network reads 28x28 (MNIST-sized) ones')
      images = images.reshape(len(images), -1)[:_LIMIT.value or None]
      for i, label in enumerate(train.predict(params['final'], images, structure)):
        print(f'{i}\t{label}')
      return
    print(json.dumps(pipeline.evaluate_member(member_dir, _DATA_DIR.value)))
  except UserError as e:
    cli.fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
