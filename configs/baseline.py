"""Baseline: the original's network and protocol (SPEC section 2), Adam at batch 256.

  python -m jaxmlp.launch --study=baseline

Original (100 epochs, one run): test accuracy 98.17%, fit time 108 s, 188*100 updates.
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='baseline',
      reference=(dict(test_accuracy=0.9817, fit_time_s=108.0, weight_updates=18_800),),
  )
