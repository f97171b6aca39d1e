"""L2(alpha) on the hidden kernels, alpha in {0.1, 0.01, 0.001}, in two arms:
(rmsprop) RMSprop(0.001, rho 0.99), Glorot kernels; (sgd_normal10) SGD(0.01), N(10) kernels.

  python -m jaxmlp.launch --study=regularization
  python -m jaxmlp.launch --study=regularization --config.arm=rmsprop --config.l2=0.001

Original (100 epochs): rmsprop: accuracy 88.37 / 93.45 / 97.40%, loss 0.56 / 0.3 / 0.13;
sgd_normal10: accuracy 11.34 / 11.34 / 11.35%, loss 2.3 / 1.17e9 / 102.23e9.
L2 removes RMSprop's overfitting gap.
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='regularization',
      l2=(0.1, 0.01, 0.001),
      arms=dict(
          rmsprop=dict(optimizer='rmsprop', learning_rate=0.001, rho=0.99),
          sgd_normal10=dict(optimizer='sgd', learning_rate=0.01, kernel_init='normal',
                            init_mean=10.0),
      ),
      reference=(
          dict(arm='rmsprop', l2=0.1, test_accuracy=0.8837, test_loss=0.56),
          dict(arm='rmsprop', l2=0.01, test_accuracy=0.9345, test_loss=0.3),
          dict(arm='rmsprop', l2=0.001, test_accuracy=0.9740, test_loss=0.13),
          dict(arm='sgd_normal10', l2=0.1, test_accuracy=0.1134, test_loss=2.3),
          dict(arm='sgd_normal10', l2=0.01, test_accuracy=0.1134, test_loss=1.17e9),
          dict(arm='sgd_normal10', l2=0.001, test_accuracy=0.1135, test_loss=102.23e9),
      ),
  )
