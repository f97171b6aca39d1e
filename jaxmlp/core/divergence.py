"""When a member has diverged: one rule, on its losses alone.

A loss that is NaN or infinite has diverged. So has a finite one past either bound:

- LOSS_LIMIT, the square root of float32's largest number (1.8e19): training squares
  numbers of a loss's size (Adam's and RMSprop's second moments hold squared gradients,
  L2 sums squared weights, the report squares deviations over seeds), so past it
  float32 overflows to inf and nothing computed is arithmetic any more. Measured: Adam
  at learning rate 1e6 (baseline, 1 seed) reaches a training loss of 4.7e20 in its
  first epoch on the full data (1.1e22 with --data_limit=2000), then settles near
  6.6e5 with its weights blown up: finite, and diverged. The largest loss of any
  study of the original, SGD from N(10, 0.05) kernels with L2 0.1 (regularization's
  sgd_normal10 arm, whose penalty alone is ~1e6 at the start), is 1.6e12 in its first
  epoch (full data, then falling; Keras reported 1.0e11 for the L2 0.001 member), the
  init study's 3.3e9: seven decades under the limit. They learn nothing, as in the
  original, but they have not diverged.
- GROWTH times the initial loss (the first finite one: the first epoch's training
  loss): a run that starts sanely and then grows a millionfold is running away. Every
  study above has its largest loss in its first epoch.
"""

import math
from collections.abc import Sequence

import numpy as np

from jaxmlp.common import numbers

LOSS_LIMIT = math.sqrt(float(np.finfo(np.float32).max))   # 1.8e19
GROWTH = 1e6

RULE = ('a loss became NaN or infinite, exceeded sqrt(float32 max) = '
        f'{LOSS_LIMIT:.1e}, or grew to over {GROWTH:.0e} times the first epoch\'s '
        'training loss')


def diverged(losses: Sequence[float | None]) -> bool:
  """Whether `losses` (in time order, the first epoch's training loss first; None or
  NaN for a loss that was not finite) show a diverged member (see the module)."""
  values = numbers.nan_if_none(losses).tolist()
  if any(not math.isfinite(v) for v in values):
    return True
  if any(v > LOSS_LIMIT for v in values):
    return True
  initial = values[0] if values else 0.0
  return initial > 0 and any(v > GROWTH * initial for v in values)
