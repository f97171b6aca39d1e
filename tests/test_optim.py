"""The optimizers and penalties follow Keras' update rules (SPEC section 2)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmlp import optim

HPARAMS = dict(learning_rate=0.01, rho=0.9, beta1=0.9, beta2=0.999, epsilon=1e-7,
               l1=0.0, l2=0.0)


def _params(rng):
  return {
      'hidden_0': {'kernel': rng.normal(size=(5, 4)), 'bias': rng.normal(size=4)},
      'output': {'kernel': rng.normal(size=(4, 3)), 'bias': rng.normal(size=3)},
  }


def _keras_reference(kind, params, grads_seq, hp):
  """Numpy transcription of Keras' update rules, penalties in the loss gradient."""
  w = jax.tree.map(np.array, params)
  slots = jax.tree.map(np.zeros_like, w), jax.tree.map(np.zeros_like, w)
  for t, grads in enumerate(grads_seq, start=1):
    for layer in w:
      for name in w[layer]:
        g = grads[layer][name].copy()
        if layer.startswith('hidden') and name == 'kernel':
          g += 2 * hp['l2'] * w[layer][name] + hp['l1'] * np.sign(w[layer][name])
        m, v = slots[0][layer], slots[1][layer]
        lr = hp['learning_rate']
        if kind == 'sgd':
          w[layer][name] -= lr * g
        elif kind == 'rmsprop':
          v[name] = hp['rho'] * v[name] + (1 - hp['rho']) * g**2
          w[layer][name] -= lr * g / np.sqrt(v[name] + hp['epsilon'])
        else:
          b1, b2 = hp['beta1'], hp['beta2']
          m[name] = b1 * m[name] + (1 - b1) * g
          v[name] = b2 * v[name] + (1 - b2) * g**2
          alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
          w[layer][name] -= alpha * m[name] / (np.sqrt(v[name]) + hp['epsilon'])
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
  tx = optim.make_optimizer(kind, {k: jnp.float32(v) for k, v in hp.items()},
                            use_l1=l1 > 0, use_l2=l2 > 0)
  w = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
  state = tx.init(w)
  for grads in grads_seq:
    updates, state = tx.update(jax.tree.map(jnp.float32, grads), state, w)
    w = optax.apply_updates(w, updates)
  expected = _keras_reference(kind, params, grads_seq, hp)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7),
               w, expected)


def test_keras_adam_differs_from_optax_adam_where_epsilon_matters():
  params = {'hidden_0': {'kernel': jnp.ones((2, 2)), 'bias': jnp.zeros(2)}}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-6), params)
  hp = {k: jnp.float32(v) for k, v in HPARAMS.items()}
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
    hp = {**{k: jnp.float32(v) for k, v in HPARAMS.items()}, 'learning_rate': lr}
    tx = optim.make_optimizer('sgd', hp, use_l1=False, use_l2=False)
    return tx.update(grads, tx.init(params), params)[0]

  a, b = step(jnp.float32(0.1)), step(jnp.float32(0.5))
  assert step._cache_size() == 1
  np.testing.assert_allclose(a['hidden_0']['kernel'], -0.1)
  np.testing.assert_allclose(b['hidden_0']['kernel'], -0.5)
