"""Keras' optimizers and weight penalties as optax chains.

Every numeric hyperparameter arrives as a (possibly traced) array in `hparams`, so
one compiled program serves every value of a grid; only the optimizer kind and
which penalties exist are structure.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmlp.core import model as model_lib

OPTIMIZERS = ('adam', 'rmsprop', 'sgd')

# Keras forms `1 - self.beta_1` (and 1 - beta_2, 1 - rho) in Python, in float64, and
# rounds once to float32; formed in float32 from a float32 beta it is off by 2.2e-7
# (beta 0.9), 1.3e-5 (0.999) and 9.3e-7 (rho 0.99) relative, enough to move a batch-1
# Adam run visibly away from Keras' within a thousand updates.
COMPLEMENTS = {'beta1': 'one_minus_beta1', 'beta2': 'one_minus_beta2',
               'rho': 'one_minus_rho'}


def complements(hparams: dict[str, float]) -> dict[str, float]:
  """1 - beta1, 1 - beta2 and 1 - rho, formed from the host's float64 values."""
  return {c: 1.0 - float(hparams[name]) for name, c in COMPLEMENTS.items()}


class KerasAdamState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def scale_by_keras_adam(learning_rate, b1, b2, eps, one_minus_b1, one_minus_b2
                        ) -> optax.GradientTransformation:
  """Keras' Adam update, learning rate included, in Keras' order of float operations:
  m += (g - m) * (1 - b1); v += (g^2 - v) * (1 - b2);
  alpha = lr * sqrt(1 - b2^t) / (1 - b1^t); w -= (m * alpha) / (sqrt(v) + eps).
  Epsilon is added to the raw sqrt(v) and the bias corrections fold into the step
  size, unlike optax.scale_by_adam; `one_minus_*` come from the host (complements)."""

  def init_fn(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)
    return KerasAdamState(jnp.zeros([], jnp.int32), zeros(), zeros())

  def update_fn(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: m + (g - m) * one_minus_b1, state.mu, updates)
    nu = jax.tree.map(lambda v, g: v + (g * g - v) * one_minus_b2, state.nu, updates)
    count = state.count + 1
    t = count.astype(jnp.float32)
    alpha = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    updates = jax.tree.map(lambda m, v: -((m * alpha) / (jnp.sqrt(v) + eps)), mu, nu)
    return updates, KerasAdamState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_keras_rmsprop(learning_rate, rho, eps, one_minus_rho
                           ) -> optax.GradientTransformation:
  """Keras' RMSprop update, learning rate included, in Keras' order of operations:
  v = rho * v + (1 - rho) * g^2 from v = 0; w -= (lr * g) / sqrt(v + eps) (epsilon
  inside the root, no bias correction).

  XLA rewrites a division by a square root as a product with rsqrt, whose CPU kernel
  is not correctly rounded for about 1 in 6 inputs; the optimization barrier keeps
  Keras' true division."""

  def init_fn(params):
    return optax.ScaleByRmsState(jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None):
    del params
    nu = jax.tree.map(lambda v, g: rho * v + one_minus_rho * (g * g), state.nu, updates)
    root = jax.lax.optimization_barrier(jax.tree.map(lambda v: jnp.sqrt(v + eps), nu))
    updates = jax.tree.map(lambda g, r: -((learning_rate * g) / r), updates, root)
    return updates, optax.ScaleByRmsState(nu)

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
  lr = hparams['learning_rate']
  if kind == 'adam':
    chain.append(scale_by_keras_adam(lr, hparams['beta1'], hparams['beta2'],
                                     hparams['epsilon'], hparams['one_minus_beta1'],
                                     hparams['one_minus_beta2']))
  elif kind == 'rmsprop':
    chain.append(scale_by_keras_rmsprop(lr, hparams['rho'], hparams['epsilon'],
                                        hparams['one_minus_rho']))
  elif kind == 'sgd':
    # Keras: w - g * lr; w + (-lr * g) is the same float operation.
    chain.append(optax.scale_by_learning_rate(lr))
  else:
    raise ValueError(f'unknown optimizer {kind!r}; choose from {OPTIMIZERS}')
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
