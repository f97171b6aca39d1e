"""Initialization: SGD(lr 0.01) with RandomNormal(mean=10, stddev=0.05) kernels.

  python -m jaxmlp.launch --study=init

Original (100 epochs): test loss 2.30, accuracy 11.34%: N(10) kernels ruin SGD
training and the net predicts one class (digit 1 is 11.35% of the test set).
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='init',
      optimizer='sgd',
      learning_rate=0.01,
      kernel_init='normal',
      init_mean=10.0,
      reference=(dict(test_accuracy=0.1134, test_loss=2.30),),
  )
