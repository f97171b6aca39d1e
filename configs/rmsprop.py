"""RMSprop(lr 0.001) with rho 0.01 and 0.99, otherwise the baseline.

  python -m jaxmlp.launch --study=rmsprop

Original (100 epochs): test accuracy 97.72% / 98.2%, test loss 0.2 / 0.11.
RMSprop overfits from the first epochs.
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='rmsprop',
      optimizer='rmsprop',
      learning_rate=0.001,
      rho=(0.01, 0.99),
      reference=(
          dict(rho=0.01, test_accuracy=0.9772, test_loss=0.2),
          dict(rho=0.99, test_accuracy=0.982, test_loss=0.11),
      ),
  )
