"""The MLP: Keras' layer layout, initializers and dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp.core import model as model_lib


def _init(kind, mean=0.0, stddev=0.05, hidden=(128, 256), seed=0):
  mlp = model_lib.MLP(hidden, kernel_init=model_lib.kernel_initializer(kind, mean, stddev))
  return mlp, mlp.init(jax.random.key(seed), jnp.zeros((1, 784)))['params']


def test_layout_and_zero_biases():
  mlp, params = _init('glorot_uniform')
  shapes = jax.tree.map(jnp.shape, params)
  assert shapes == {'hidden_0': {'kernel': (784, 128), 'bias': (128,)},
                    'hidden_1': {'kernel': (128, 256), 'bias': (256,)},
                    'output': {'kernel': (256, 10), 'bias': (10,)}}
  assert all(np.all(params[l]['bias'] == 0) for l in params)
  assert mlp.apply({'params': params}, jnp.ones((7, 784))).shape == (7, 10)


def test_glorot_uniform_limits():
  _, params = _init('glorot_uniform')
  w = params['hidden_0']['kernel']
  limit = np.sqrt(6 / (784 + 128))
  assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit


def test_random_normal_mean_10():
  _, params = _init('normal', mean=10.0, stddev=0.05)
  for layer in params.values():
    np.testing.assert_allclose(np.mean(layer['kernel']), 10.0, atol=0.01)
    np.testing.assert_allclose(np.std(layer['kernel']), 0.05, rtol=0.1)


def test_he_normal_is_truncated_with_keras_stddev():
  _, params = _init('he_normal')
  w = np.asarray(params['hidden_0']['kernel'])
  target = np.sqrt(2 / 784)
  np.testing.assert_allclose(w.std(), target, rtol=0.03)
  # Truncated at 2 sigma of the untruncated normal (stddev target / 0.8796).
  assert np.abs(w).max() <= 2 * target / 0.87962566 + 1e-6


def test_unknown_init_is_refused():
  with pytest.raises(ValueError, match='kernel_init'):
    model_lib.kernel_initializer('orthogonal')


def test_dropout_only_in_training_and_scaled():
  mlp = model_lib.MLP((64,), use_dropout=True)
  params = mlp.init(jax.random.key(0), jnp.zeros((1, 784)))['params']
  x = jnp.ones((500, 784))
  half = model_lib.dropout_constants(0.5)
  evaluation = mlp.apply({'params': params}, x)
  again = mlp.apply({'params': params}, x, train=False, **half)
  np.testing.assert_array_equal(evaluation, again)
  trained = mlp.apply({'params': params}, x, train=True, **half,
                      rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(trained, evaluation)


def test_dropout_keeps_units_at_keras_rate_and_scales_them_as_tf_does():
  hidden = jax.random.uniform(jax.random.key(3), (400, 256), minval=0.1)
  constants = model_lib.dropout_constants(0.3)
  dropped = model_lib.dropout(hidden, jnp.float32(constants['dropout_keep']),
                              jnp.float32(constants['dropout_scale']), jax.random.key(2))
  kept = np.asarray(dropped) != 0
  np.testing.assert_allclose(kept.mean(), 0.7, atol=0.01)
  # tf.nn.dropout: x * (1 / (1 - rate)), the scale formed in float64 and rounded once
  # (which x / 0.7 in float32 is not, for some x).
  scale = np.float32(1 / (1 - 0.3))
  np.testing.assert_array_equal(np.asarray(dropped)[kept], np.asarray(hidden)[kept] * scale)
  assert np.any(np.asarray(hidden)[kept] / np.float32(0.7) != np.asarray(hidden)[kept] * scale)
  # Inverted dropout keeps the expected activation.
  np.testing.assert_allclose(dropped.mean(), hidden.mean(), rtol=0.02)


def test_hidden_kernel_mask():
  _, params = _init('glorot_uniform')
  mask = model_lib.hidden_kernel_mask(params)
  assert mask == {'hidden_0': {'kernel': True, 'bias': False},
                  'hidden_1': {'kernel': True, 'bias': False},
                  'output': {'kernel': False, 'bias': False}}
