"""L1(0.01) on the hidden kernels plus Dropout(0.3) after each hidden layer, in two arms:
(rmsprop) RMSprop(0.001, rho 0.99), Glorot kernels; (sgd_normal10) SGD(0.01), N(10) kernels.

  python -m jaxmlp.launch --study=dropout

Original (100 epochs): rmsprop: loss 1.49, accuracy 82.26%;
sgd_normal10: loss 102e6, accuracy 11.34%. L1 + dropout underfits.
"""

from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='dropout',
      l1=0.01,
      dropout_rate=0.3,
      arms=dict(
          rmsprop=dict(optimizer='rmsprop', learning_rate=0.001, rho=0.99),
          sgd_normal10=dict(optimizer='sgd', learning_rate=0.01, kernel_init='normal',
                            init_mean=10.0),
      ),
      reference=(
          dict(arm='rmsprop', test_accuracy=0.8226, test_loss=1.49),
          dict(arm='sgd_normal10', test_accuracy=0.1134, test_loss=102e6),
      ),
  )
