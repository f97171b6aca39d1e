"""The fine-tuning question the original left open: accuracy against size. Both hidden
widths are dimensions (16 to 512 each, 25 networks), with RMSprop's learning rate and
the L2 alpha of the fine-tuning grid's best region; two objectives, validation
accuracy (max) and the parameter count (min), so the study answers with a Pareto
front rather than one network.

  python -m jaxmlp.launch --study=finetune_pareto                      # the grid
  python -m jaxmlp.launch --study=finetune_pareto --search=hyperband   # promotes by
                                                                       # Pareto rank
  python -m jaxmlp.launch --study=finetune_pareto --search=optuna      # NSGA-II
  python -m jaxmlp.launch --study=finetune_pareto --search=optuna \
      --config.optuna.pruner=successive_halving --config.optuna.trials=300   # pruned by
                                                                       # Pareto rank

Its report's "Pareto front" section, figures/pareto_front.png and pareto_front.csv
give the front; jaxmlp.read_pareto ranks the finished study by other objectives
(e.g. '(val_loss, flops)'). Add --config.constraints='(parameter_count <= 100000,)'
for a budget: feasible networks rank first.

Measured (full MNIST, 1 seed, 2-core CPU; hypervolumes against (0.9, 700,000)):
- the grid, as configured (20 epochs), 10 min 49 s: 17 of the 100 configurations on the
  front, from 16x16 (val accuracy 0.9476, 13,002 parameters) to 512x256 (0.9831,
  535,818), the original's 128x256 among them (0.9760, 136,074); hypervolume 5.418e+04.
- Optuna with pruning by Pareto rank and only 100 trials: 97 pruned (epoch 1: 70 of
  100, epoch 3: 21 of 30, epoch 9: 6 of 9), so 3 complete and the front has 3 points
  (hypervolume 2.994e+04, 1 min 54 s). Successive halving keeps a third per rung: give it
  about 3^3 times the trials a front should have, hence 300 above, or no pruner (the
  default here).
- At 4 epochs (benchmarks/RESULTS.md, every search): the grid 4.622e+04 in 273 s,
  NSGA-II without pruning 4.519e+04 in 164 s.
"""

import itertools

from jaxmlp.studies.study import make_config

WIDTHS = (16, 64, 128, 256, 512)   # 128 x 256: the original's choice


def get_config():
  return make_config(
      name='finetune_pareto',
      optimizer='rmsprop',
      kernel_init='he_normal',
      hidden_sizes=tuple(itertools.product(WIDTHS, WIDTHS)),
      l2=(1e-3, 1e-6),
      learning_rate=(1e-2, 1e-3),
      epochs=20,
      objective='(val_accuracy, parameter_count)',
      # With --search=optuna: as many trials as the space has points, NSGA-II
      # proposing, no pruning (with it, 100 trials leave about 100 / 3^3 complete).
      optuna=dict(trials=100, sampler='nsga2', pruner='none'),
      final_reference=dict(configuration='hidden_sizes=128x256,l2=1e-06,learning_rate=0.001',
                           test_accuracy=0.9829, test_f1=0.9831),
  )
