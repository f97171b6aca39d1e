"""Keras' optimizers and weight penalties as optax chains.

Every numeric hyperparameter arrives as a (possibly traced) array in `hparams`, so
one compiled program serves every value of a grid; only the optimizer kind and
which penalties exist are structure.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmlp import model as model_lib

OPTIMIZERS = ('adam', 'rmsprop', 'sgd')


class KerasAdamState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def scale_by_keras_adam(b1, b2, eps) -> optax.GradientTransformation:
  """Keras' Adam direction: epsilon is added to the raw sqrt(v), and the bias
  corrections fold into the step size, unlike optax.scale_by_adam."""

  def init_fn(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)
    return KerasAdamState(jnp.zeros([], jnp.int32), zeros(), zeros())

  def update_fn(updates, state, params=None):
    del params
    # Keras writes the moment updates in this incremental form.
    mu = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), state.mu, updates)
    nu = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), state.nu, updates)
    count = state.count + 1
    t = count.astype(jnp.float32)
    correction = jnp.sqrt(1 - b2**t) / (1 - b1**t)
    updates = jax.tree.map(lambda m, v: correction * m / (jnp.sqrt(v) + eps), mu, nu)
    return updates, KerasAdamState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)


def add_l1_subgradient(alpha, mask) -> optax.GradientTransformation:
  """Adds alpha * sign(w): the gradient of Keras' l1(alpha) loss term (optax has none)."""

  def update_fn(updates, state, params):
    return jax.tree.map(lambda g, w: g + alpha * jnp.sign(w), updates, params), state

  return optax.masked(
      optax.GradientTransformation(lambda _: optax.EmptyState(), update_fn), mask)


def make_optimizer(kind: str, hparams: dict[str, Any], *, use_l1: bool,
                   use_l2: bool) -> optax.GradientTransformation:
  """The Keras update rule for `kind`, with its penalties' gradients added first.

  Keras adds the penalty to the loss, so its gradient passes through the
  optimizer's per-weight scaling: the penalties come BEFORE the scaling here.
  L2 alpha*sum(w^2) has gradient 2*alpha*w.
  """
  chain = []
  if use_l2:
    chain.append(optax.add_decayed_weights(2.0 * hparams['l2'],
                                           mask=model_lib.hidden_kernel_mask))
  if use_l1:
    chain.append(add_l1_subgradient(hparams['l1'], model_lib.hidden_kernel_mask))
  if kind == 'adam':
    chain.append(scale_by_keras_adam(hparams['beta1'], hparams['beta2'],
                                     hparams['epsilon']))
  elif kind == 'rmsprop':
    # Keras RMSprop: epsilon inside the square root, v starts at 0.
    chain.append(optax.scale_by_rms(decay=hparams['rho'], eps=hparams['epsilon'],
                                    initial_scale=0.0))
  elif kind != 'sgd':
    raise ValueError(f'unknown optimizer {kind!r}; choose from {OPTIMIZERS}')
  chain.append(optax.scale_by_learning_rate(hparams['learning_rate']))
  return optax.chain(*chain)


def penalty(params, hparams: dict[str, Any], *, use_l1: bool, use_l2: bool):
  """The regularization term Keras adds to the reported loss."""
  mask = model_lib.hidden_kernel_mask(params)
  kernels = [w for w, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if m]
  total = jnp.zeros([], jnp.float32)
  if use_l2:
    total += hparams['l2'] * sum(jnp.sum(w * w) for w in kernels)
  if use_l1:
    total += hparams['l1'] * sum(jnp.sum(jnp.abs(w)) for w in kernels)
  return total
