"""jaxmlp: vectorized MLP-on-MNIST hyperparameter studies in JAX.

  import jaxmlp
  jaxmlp.read_results('results/baseline')   # pandas: one row per member
  jaxmlp.read_history('results/baseline')   # pandas: one row per member and epoch
"""

__all__ = ['read_results', 'read_history']


def __getattr__(name: str):
  # Loaded on first use (PEP 562): `import jaxmlp` and the command lines stay fast,
  # without pandas or jax.
  if name in __all__:
    from jaxmlp.report import frames
    return getattr(frames, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
