"""Loading MNIST through tensorflow-datasets, a convenience in tfds' order."""

from __future__ import annotations

import numpy as np

from jaxmlp.data import types
from jaxmlp.data import idx
from jaxmlp.common.errors import DataError


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    if e.name in (None, 'tensorflow_datasets'):
      raise DataError("tensorflow-datasets is not installed: pip install "
                      "'jaxmlp[tfds]', or use --data_source=idx") from e
    raise DataError(f"tensorflow-datasets could not be imported ({e}): pip "
                    f"install 'jaxmlp[tfds]', or use --data_source=idx") from e
  return tfds


def load_tfds(data_dir: str | None = None) -> types.Mnist:
  """Loads MNIST through tensorflow-datasets.

  tfds stores and returns the examples in its own order, which differs from
  the IDX file order that Keras uses. Even with identical seeds the
  train/validation split and the batches therefore differ, so results are
  not comparable row-for-row with the original Keras study; use
  `data.load_idx` for a faithful reproduction.

  Args:
    data_dir: tfds data folder; None uses tfds' default.

  Returns:
    The dataset in tfds order, images flattened to (N, 784).

  Raises:
    DataError: tensorflow-datasets is missing or could not provide MNIST.
  """
  tfds = _import_tfds()
  try:
    train, test = tfds.as_numpy(
        tfds.load('mnist', split=['train', 'test'], batch_size=-1,
                  as_supervised=True, data_dir=data_dir))
  except Exception as e:  # pylint: disable=broad-except
    # tfds raises many unrelated types when offline or misconfigured.
    raise DataError(f'tensorflow-datasets could not load mnist '
                    f'({type(e).__name__}: {e}): check the network or '
                    f'--data_dir, or use --data_source=idx') from e
  parts = []
  for part, (images, labels) in (('train', train), ('test', test)):
    images = np.asarray(images, np.uint8).reshape(len(images), -1)
    labels = np.asarray(labels).astype(np.int32)
    if images.shape[1] != np.prod(idx.IMAGE_SHAPE):
      raise DataError(f'tfds mnist {part} images have {images.shape[1]} '
                      f'pixels, not 784: clear the tfds cache in --data_dir')
    idx.check_labels(f'tfds mnist {part}', labels)
    idx.check_counts(part, images, labels, verify_checksums=True)
    parts += [images, labels]
  return types.Mnist(*parts)
