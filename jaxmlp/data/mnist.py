"""MNIST loading that reproduces the Keras study's data exactly.

The original study used `keras.datasets.mnist`, which reads Yann LeCun's IDX
files in file order and lets `validation_split` take the last rows as the
validation set. Reading the same verified IDX files in the same order is what
makes a run here comparable row-for-row with the Keras one, so that is the
default source; tensorflow-datasets is offered only as a convenience.
This module is what training uses; `idx` reads and checks the files,
`mnist_files` finds or downloads them and `tfds` loads through tfds.

Every problem a user can fix raises `DataError` with a one-line message that
names the problem and the fix, because the CLI prints it and exits 2.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os
import pathlib

import numpy as np

from jaxmlp.data import idx
from jaxmlp.data import mnist_files
from jaxmlp.common import faults
# The split's types are part of this module's interface: callers write data.Split.
from jaxmlp.data.types import Mnist, Split  # pylint: disable=unused-import
# Callers catch data.DataError, so it stays part of this module's interface.
from jaxmlp.common.errors import DataError

# Likewise part of the interface: evaluate.py reads files through it.
read_idx = idx.read_idx

SOURCES: tuple[str, ...] = ('idx', 'tfds')


def _load_part(part: str, paths: dict[str, pathlib.Path],
               verify_checksums: bool,
               fix: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads one split's images and labels, structure first, checksums last."""
  image_path = paths[idx.FILES[f'{part}_images']]
  label_path = paths[idx.FILES[f'{part}_labels']]
  images, image_digest = idx.decode(image_path,
                                    want_digest=verify_checksums, fix=fix)
  labels, label_digest = idx.decode(label_path,
                                    want_digest=verify_checksums, fix=fix)
  idx.check_kind(image_path, images, images=True)
  idx.check_kind(label_path, labels, images=False)
  idx.check_labels(str(label_path), labels)
  idx.check_counts(part, images, labels, verify_checksums)
  if verify_checksums:
    fix += (', or turn off checksum verification to load another IDX dataset '
            'such as Fashion-MNIST')
    idx.check_digest(str(image_path), image_digest,
                     idx.SHA256[idx.FILES[f'{part}_images']], fix)
    idx.check_digest(str(label_path), label_digest,
                     idx.SHA256[idx.FILES[f'{part}_labels']], fix)
  return images.reshape(len(images), -1), labels.astype(np.int32)


def load_idx(data_dir: str | None = None,
             *,
             verify_checksums: bool = True,
             mirrors: Sequence[str] | None = None,
             cache_dir: pathlib.Path | None = None,
             timeout_s: float = 30.0) -> Mnist:
  """Loads MNIST from IDX files, downloading into the cache only if needed.

  Args:
    data_dir: folder holding the four files (raw or .gz); None falls back to
      $MNIST_DIR, then the cache.
    verify_checksums: compare against the original MNIST SHA-256 sums. Turn
      off to load another IDX dataset such as Fashion-MNIST; the structural
      checks still run.
    mirrors: base URLs tried in order for each missing file; default
      $JAXMLP_MNIST_MIRRORS (comma-separated, e.g. a local mirror), else
      `mnist_files.MIRRORS`.
    cache_dir: where downloads go; defaults to
      `mnist_files.default_cache_dir()`.
    timeout_s: socket timeout per download request.

  Returns:
    The dataset in file order, images flattened to (N, 784).

  Raises:
    DataError: a file is missing and cannot be downloaded, or one is corrupt.
  """
  if mirrors is None:
    mirrors = tuple(filter(None, os.environ.get('JAXMLP_MNIST_MIRRORS', '').split(','))
                    ) or mnist_files.MIRRORS
  folder = mnist_files.resolve_data_dir(data_dir)
  cache = (pathlib.Path(cache_dir) if cache_dir
           else mnist_files.default_cache_dir())
  paths, fix = mnist_files.locate(folder, cache, mirrors, timeout_s)
  train_images, train_labels = _load_part('train', paths, verify_checksums, fix)
  test_images, test_labels = _load_part('test', paths, verify_checksums, fix)
  return Mnist(train_images, train_labels, test_images, test_labels)


def load(source: str = 'idx',
         data_dir: str | None = None,
         *,
         verify_checksums: bool = True) -> Mnist:
  """Loads MNIST from `source`, which is 'idx' (faithful) or 'tfds'.

  `verify_checksums` applies to 'idx' only; tfds verifies its own downloads.
  """
  if source == 'idx':
    return load_idx(data_dir, verify_checksums=verify_checksums)
  if source == 'tfds':
    # Imported here: only this source needs tensorflow-datasets.
    from jaxmlp.data import tfds as tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.load_tfds(data_dir)
  valid = ', '.join(repr(s) for s in SOURCES)
  raise DataError(f'unknown data source {source!r}: use one of {valid} '
                  f'(--data_source=idx reproduces the Keras study)')


def split(mnist: Mnist, validation_split: float = 0.2) -> Split:
  """Cuts off the last `validation_split` of the training rows, like Keras.

  Keras `fit(validation_split=v)` splits at `int(n * (1 - v))` before any
  shuffling, so the validation set is the tail of the file; matching that
  exactly keeps validation metrics comparable with the original study.
  Images stay uint8 so scaling remains one explicit step elsewhere.

  Args:
    mnist: the loaded dataset.
    validation_split: fraction in [0, 1); 0 gives empty validation arrays.

  Returns:
    Views into `mnist`'s arrays; nothing is copied.

  Raises:
    DataError: `validation_split` is outside [0, 1) or leaves no train rows.
  """
  if not 0.0 <= validation_split < 1.0:
    raise DataError(f'validation_split={validation_split} is outside [0, 1): '
                    f'pass a fraction such as 0.2')
  n = len(mnist.train_images)
  at = int(n * (1.0 - validation_split))
  if at == 0:
    raise DataError(f'validation_split={validation_split} leaves no training '
                    f'rows out of {n}: pass a smaller fraction such as 0.2')
  return Split(
      x_train=mnist.train_images[:at], y_train=mnist.train_labels[:at],
      x_val=mnist.train_images[at:], y_val=mnist.train_labels[at:],
      x_test=mnist.test_images, y_test=mnist.test_labels)


def head(split_: Split, rows: int) -> Split:
  """The first `rows` rows of each part (0: all): quick smoke runs, not the protocol."""
  if rows <= 0:
    return split_
  return Split(*(a[:rows] for a in dataclasses.astuple(split_)))


def load_split(run, data_dir: str | None = None) -> Split:
  """The split a run trains on, from its config's data_source, data_checksums,
  validation_split and data_limit (a ConfigDict or a dict)."""
  run = dict(run)
  mnist = load(run['data_source'], data_dir, verify_checksums=run['data_checksums'])
  faults.passed('data')   # a test's kill lands once the data is loaded
  return head(split(mnist, run['validation_split']), run['data_limit'])
