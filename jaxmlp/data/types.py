"""The arrays MNIST loads into: the four files, and the split training uses."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Mnist:
  """The four MNIST arrays, rows in file order.

  Images are flattened row-wise to (N, 784) uint8 because that is what the
  Keras MLP consumed (`reshape(-1, 784)`); scaling is left to the caller so
  the stored data stays exact.
  """
  train_images: np.ndarray  # (60000, 784) uint8
  train_labels: np.ndarray  # (60000,) int32
  test_images: np.ndarray  # (10000, 784) uint8
  test_labels: np.ndarray  # (10000,) int32


@dataclasses.dataclass(frozen=True)
class Split:
  """Train/validation/test arrays as Keras `validation_split` would cut them."""
  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
