"""The MLP of the original study as a Flax module, used functionally."""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

KERNEL_INITS = ('glorot_uniform', 'normal', 'he_normal')


def kernel_initializer(kind: str, mean=0.0, stddev=0.05) -> Initializer:
  """Keras' kernel initializers; `mean` and `stddev` may be traced arrays.

  Flax's Dense defaults to lecun_normal, so the Keras choice is always explicit.
  """
  if kind == 'glorot_uniform':
    return nn.initializers.glorot_uniform()
  if kind == 'he_normal':
    # Keras HeNormal: truncated at 2 sigma, rescaled to stddev sqrt(2 / fan_in).
    return nn.initializers.he_normal()
  if kind == 'normal':
    def normal(key, shape, dtype=jnp.float32):
      return mean + stddev * jax.random.normal(key, shape, dtype)
    return normal
  raise ValueError(f'unknown kernel_init {kind!r}; choose from {KERNEL_INITS}')


def dropout_constants(rate: float) -> dict[str, float]:
  """The keep probability and the scale of Keras' Dropout(rate), formed in float64 on
  the host as TF-Keras forms them (`1 - rate`, then `1 / (1 - rate)`)."""
  keep = 1.0 - float(rate)
  return {'dropout_keep': keep, 'dropout_scale': 1.0 / keep}


def dropout(x, keep, scale, rng):
  """Inverted dropout with traced constants (nn.Dropout needs a constant rate): kept
  units are multiplied by `scale`, as tf.nn.dropout multiplies by 1 / keep."""
  mask = jax.random.bernoulli(rng, keep, x.shape)
  return jnp.where(mask, x * scale, 0.0)


class MLP(nn.Module):
  """Dense-ReLU hidden layers (optionally with dropout), then 10 logits."""
  hidden_sizes: Sequence[int] = (128, 256)
  num_classes: int = 10
  use_dropout: bool = False
  kernel_init: Initializer = nn.initializers.glorot_uniform()

  @nn.compact
  def __call__(self, x_BD, *, train: bool = False, dropout_keep=1.0, dropout_scale=1.0):
    x = x_BD
    for i, size in enumerate(self.hidden_sizes):
      x = nn.Dense(size, kernel_init=self.kernel_init,
                   bias_init=nn.initializers.zeros, name=f'hidden_{i}')(x)
      x = nn.relu(x)
      if self.use_dropout and train:
        x = dropout(x, dropout_keep, dropout_scale, self.make_rng('dropout'))
    return nn.Dense(self.num_classes, kernel_init=self.kernel_init,
                    bias_init=nn.initializers.zeros, name='output')(x)


def hidden_kernel_mask(params):
  """True at the hidden layers' kernels: the only weights the original regularized."""
  return {
      layer: {name: layer.startswith('hidden_') and name == 'kernel'
              for name in leaves}
      for layer, leaves in params.items()
  }
