"""Population-based bandits (PB2, Parker-Holder et al. 2020) over the original's
fine-tuning space, in one compiled program: the finetune_pbt study (RMSprop(lr),
L2(alpha) on the hidden kernels, HeNormal kernels, 128x256; learning rate log-uniform in
[1e-4, 1e-1], alpha log-uniform in [1e-7, 1e-1]; a population of 16), explored by a
GP-UCB bandit instead of random perturbation.

  python -m jaxmlp.launch --study=finetune_pb2
  python -m jaxmlp.launch --study=finetune_pb2 --config.pb2.population=8
  python -m jaxmlp.launch --study=finetune_pb2 --search=pbt_replay \\
      --config.pbt_replay.study=results/finetune_pb2      # the winner's schedule, alone

As Ray Tune's PB2: every 5 epochs (pb2.interval) the bottom quarter (pb2.quantile),
ranked by the last epoch's validation accuracy, copies the weights, optimizer state and
best-epoch tracker of a member drawn from the top quarter (PBT's exploit); each copy's
new learning rate and alpha maximize the upper confidence bound of a time-varying
Gaussian process fitted on how fast every interval so far raised the score, within the
space. Everything follows from search_seed; lineage, pbt.json and report are PBT's.
Original: best of its grid 128/256/1e-6/1e-3; retrained: test accuracy 98.29%, F1 0.9831.
PB2 against PBT at populations 4 and 8 on this space: benchmarks/pbt_bench.py
(benchmarks/RESULTS.md).
"""

from jaxmlp.studies import space
from jaxmlp.studies.study import make_config


def get_config():
  return make_config(
      name='finetune_pb2',
      optimizer='rmsprop',
      kernel_init='he_normal',
      hidden_sizes=(128, 256),
      l2=space.log_uniform(1e-7, 1e-1),
      learning_rate=space.log_uniform(1e-4, 1e-1),
      epochs=50,
      seeds=1,
      search='pb2',
      pb2=dict(population=16, interval=5, quantile=0.25),
      confusion_matrix=True,
      final_epochs=0,    # the final model is the winner as trained
      final_reference=dict(configuration='hidden_sizes=128x256,l2=1e-06,learning_rate=0.001',
                           test_accuracy=0.9829, test_f1=0.9831),
  )
