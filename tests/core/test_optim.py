"""The optimizers and penalties follow Keras' update rules (SPEC section 2)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmlp.core import optim

HPARAMS = dict(learning_rate=0.01, rho=0.9, beta1=0.9, beta2=0.999, epsilon=1e-7,
               l1=0.0, l2=0.0)


def _traced(hp):
  """Float32 hyperparameters as the engine passes them, Keras' 1 - beta included."""
  return {k: jnp.float32(v) for k, v in {**hp, **optim.complements(hp)}.items()}


def _params(rng):
  return {
      'hidden_0': {'kernel': rng.normal(size=(5, 4)), 'bias': rng.normal(size=4)},
      'output': {'kernel': rng.normal(size=(4, 3)), 'bias': rng.normal(size=3)},
  }


def _keras_reference(kind, params, grads_seq, hp):
  """Keras 3's update_step for each optimizer, transcribed in numpy float32 in Keras'
  order of operations, the penalties' gradients added to the loss gradient (an L2
  of alpha has gradient alpha * (2 * w)); Python floats such as 1 - beta1 are formed
  in float64 and rounded once, as Keras' ops.* calls convert them."""
  f32 = np.float32
  w = jax.tree.map(lambda p: np.asarray(p, f32), params)
  slots = jax.tree.map(np.zeros_like, w), jax.tree.map(np.zeros_like, w)
  lr, eps = f32(hp['learning_rate']), f32(hp['epsilon'])
  for t, grads in enumerate(grads_seq, start=1):
    for layer in w:
      for name in w[layer]:
        x, g = w[layer][name], np.asarray(grads[layer][name], f32)
        if layer.startswith('hidden') and name == 'kernel':
          g = g + f32(hp['l2']) * (f32(2) * x) + f32(hp['l1']) * np.sign(x)
        m, v = slots[0][layer], slots[1][layer]
        if kind == 'sgd':
          w[layer][name] = x - g * lr
        elif kind == 'rmsprop':
          v[name] = f32(hp['rho']) * v[name] + f32(1 - hp['rho']) * np.square(g)
          w[layer][name] = x - (lr * g) / np.sqrt(v[name] + eps)
        else:
          step = f32(t)
          b1_power, b2_power = f32(hp['beta1']) ** step, f32(hp['beta2']) ** step
          alpha = lr * np.sqrt(f32(1) - b2_power) / (f32(1) - b1_power)
          m[name] = m[name] + (g - m[name]) * f32(1 - hp['beta1'])
          v[name] = v[name] + (np.square(g) - v[name]) * f32(1 - hp['beta2'])
          w[layer][name] = x - (m[name] * alpha) / (np.sqrt(v[name]) + eps)
  return w


@pytest.mark.parametrize('kind', optim.OPTIMIZERS)
@pytest.mark.parametrize('l1,l2', [(0.0, 0.0), (0.0, 0.01), (0.003, 0.0), (0.003, 0.01)])
def test_updates_match_keras_formulas(kind, l1, l2):
  rng = np.random.default_rng(0)
  params = _params(rng)
  # Small gradients make epsilon's placement matter for Adam.
  grads_seq = [jax.tree.map(lambda p: 1e-4 * rng.normal(size=p.shape), params)
               for _ in range(6)]
  hp = {**HPARAMS, 'l1': l1, 'l2': l2}
  tx = optim.make_optimizer(kind, _traced(hp),
                            use_l1=l1 > 0, use_l2=l2 > 0)
  w = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
  state = tx.init(w)
  step = jax.jit(lambda g, s, w: (lambda u, s: (optax.apply_updates(w, u), s))(
      *tx.update(g, s, w)))
  for grads in grads_seq:
    w, state = step(jax.tree.map(jnp.float32, grads), state, w)
  expected = _keras_reference(kind, params, grads_seq, hp)
  # Within a few ulps: XLA may fuse a multiply-add, and its pow and numpy's may differ
  # in the last bit.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=0),
               w, expected)


def test_keras_adam_differs_from_optax_adam_where_epsilon_matters():
  params = {'hidden_0': {'kernel': jnp.ones((2, 2)), 'bias': jnp.zeros(2)}}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-6), params)
  hp = _traced(HPARAMS)
  keras = optim.make_optimizer('adam', hp, use_l1=False, use_l2=False)
  ours, _ = keras.update(grads, keras.init(params), params)
  theirs, _ = optax.adam(0.01, eps=1e-7).update(grads, optax.adam(0.01).init(params))
  # First step: Keras divides by sqrt(1-b2)*|g|... + eps, optax by |g| + eps.
  assert not np.allclose(ours['hidden_0']['kernel'], theirs['hidden_0']['kernel'], rtol=1e-3)


def test_penalty_is_keras_loss_term_on_hidden_kernels_only():
  params = {'hidden_0': {'kernel': jnp.array([[1.0, -2.0]]), 'bias': jnp.array([5.0, 5.0])},
            'hidden_1': {'kernel': jnp.array([[3.0]]), 'bias': jnp.array([5.0])},
            'output': {'kernel': jnp.array([[7.0]]), 'bias': jnp.array([5.0])}}
  hp = {'l1': jnp.float32(0.1), 'l2': jnp.float32(0.01)}
  l2 = optim.penalty(params, hp, use_l1=False, use_l2=True)
  l1 = optim.penalty(params, hp, use_l1=True, use_l2=False)
  both = optim.penalty(params, hp, use_l1=True, use_l2=True)
  np.testing.assert_allclose(l2, 0.01 * (1 + 4 + 9))   # a * sum(w^2), no 1/2
  np.testing.assert_allclose(l1, 0.1 * (1 + 2 + 3))
  np.testing.assert_allclose(both, l1 + l2)


def test_hyperparameters_are_traced_not_baked_in():
  """One compiled update serves every learning rate (a grid needs no recompiles)."""
  params = {'hidden_0': {'kernel': jnp.ones((2, 2)), 'bias': jnp.zeros(2)}}
  grads = jax.tree.map(jnp.ones_like, params)

  @jax.jit
  def step(lr):
    hp = {**_traced(HPARAMS), 'learning_rate': lr}
    tx = optim.make_optimizer('sgd', hp, use_l1=False, use_l2=False)
    return tx.update(grads, tx.init(params), params)[0]

  a, b = step(jnp.float32(0.1)), step(jnp.float32(0.5))
  assert step._cache_size() == 1
  np.testing.assert_allclose(a['hidden_0']['kernel'], -0.1)
  np.testing.assert_allclose(b['hidden_0']['kernel'], -0.5)


@pytest.mark.parametrize('name, value', [('beta1', 0.9), ('beta2', 0.999), ('rho', 0.99)])
def test_one_minus_beta_is_rounded_once_from_float64_as_keras_forms_it(name, value):
  hp = {**HPARAMS, name: value}
  complement = np.float32(optim.complements(hp)[optim.COMPLEMENTS[name]])
  assert complement == np.float32(1.0 - value)           # Keras: `1 - self.beta_1`
  assert complement != np.float32(1) - np.float32(value)  # what float32 betas give
