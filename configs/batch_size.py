"""Batch size: Adam at batch 1, 256 and 48000 (the whole training set).

  python -m jaxmlp.launch --study=batch_size
  python -m jaxmlp.launch --study=batch_size --config.batch_size=256   # one arm only

Original (100 epochs, one run each): test accuracy 96.10% / 98.17% / 95.48%;
fit time 8913 s / 108 s / 55 s; weight updates 48000*100 / 188*100 / 1*100.
Batch 1 overfits (validation loss rises after ~10 epochs), the full batch underfits.
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='batch_size',
      batch_size=(1, 256, 48_000),
      reference=(
          dict(batch_size=1, test_accuracy=0.9610, fit_time_s=8913.0,
               weight_updates=4_800_000),
          dict(batch_size=256, test_accuracy=0.9817, fit_time_s=108.0,
               weight_updates=18_800),
          dict(batch_size=48_000, test_accuracy=0.9548, fit_time_s=55.0,
               weight_updates=100),
      ),
  )
