"""A network's costs from its layer sizes, against the parameters Flax creates."""

import math

import jax
import pytest

from jaxmlp.core import costs
from jaxmlp.core import train


@pytest.mark.parametrize('hidden_sizes', [(), (16,), (128, 256), (512, 64, 32)])
def test_parameter_count_is_the_networks(hidden_sizes):
  shapes = train.Structure(hidden_sizes=hidden_sizes).param_shapes()
  created = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
  assert costs.parameter_count(hidden_sizes) == created


def test_flops_are_two_per_weight():
  # 784-128-256-10: 100,352 + 32,768 + 2,560 weights, a multiply and an add each.
  assert costs.flops((128, 256)) == 2 * (784 * 128 + 128 * 256 + 256 * 10) == 271_360
  assert costs.of('parameter_count', (128, 256)) == 784 * 128 + 128 + 128 * 256 + 256 + 2570
