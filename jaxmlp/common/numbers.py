"""Small numeric rules used across layers: whole blocks, and JSON's None for what is
not a finite number (a diverged member's loss) and back."""

import math
from collections.abc import Iterable

import numpy as np


def ceil_div(a: int, b: int) -> int:
  """The whole blocks of b that hold a (a > 0, b > 0)."""
  return -(-a // b)


def finite(x):
  """JSON has no NaN or inf: a number that is not finite is written as None (null);
  a list or tuple, element by element."""
  if isinstance(x, (list, tuple)):
    return [finite(v) for v in x]
  x = float(x)
  return x if math.isfinite(x) else None


def nan_if_none(values: Iterable[float | None]) -> np.ndarray:
  """float64 values with None (JSON's null) read back as NaN."""
  return np.array([np.nan if v is None else v for v in values], np.float64)
