"""jaxmlp: vectorized MLP-on-MNIST hyperparameter studies in JAX.

  import jaxmlp
  result = jaxmlp.run_study('baseline', epochs=3, seeds=2)   # as the command line runs it
  result.frame                              # pandas: one row per member
  jaxmlp.read_results('results/baseline')   # the same, from a study's folder
  jaxmlp.read_history('results/baseline')   # pandas: one row per member and epoch
  jaxmlp.read_pareto('results/finetune', '(val_accuracy, parameter_count)')   # the front
  trained = jaxmlp.train(jaxmlp.members_of('baseline', epochs=2), initial_params=...)
"""

# name -> the module that defines it; each is loaded on first use (PEP 562), so
# `import jaxmlp` and the command lines stay fast, without pandas or jax.
_EXPORTS = {
    'run_study': 'jaxmlp.api', 'StudyResult': 'jaxmlp.api', 'load_study': 'jaxmlp.api',
    'members_of': 'jaxmlp.api', 'train': 'jaxmlp.api', 'TrainedMember': 'jaxmlp.api',
    'read_results': 'jaxmlp.frames', 'read_history': 'jaxmlp.frames',
    'read_pareto': 'jaxmlp.frames',
    'UserError': 'jaxmlp.common.errors',
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
  if name in _EXPORTS:
    import importlib  # pylint: disable=import-outside-toplevel
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
