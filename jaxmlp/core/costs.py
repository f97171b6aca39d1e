"""What a network costs, exactly from its layer sizes: its parameters and the FLOPs of
one example's forward pass. Objectives of their own (`parameter_count`, `flops`), the
same for every member of a structure, so they need no training to be known."""

from collections.abc import Sequence

INPUT_DIM = 784   # MNIST's 28 x 28 pixels
CLASSES = 10

COSTS = ('parameter_count', 'flops')
# Measured, not computed (engine/latency.py): machine-dependent, kept per study.
LATENCIES = ('latency_ms', 'batch_latency_ms')


def layer_sizes(hidden_sizes: Sequence[int], input_dim: int = INPUT_DIM,
                classes: int = CLASSES) -> list[tuple[int, int]]:
  """(inputs, outputs) of each dense layer, the output layer last."""
  sizes = [input_dim, *hidden_sizes, classes]
  return list(zip(sizes[:-1], sizes[1:]))


def parameter_count(hidden_sizes: Sequence[int], input_dim: int = INPUT_DIM,
                    classes: int = CLASSES) -> int:
  """Weights and biases (Keras' model.count_params())."""
  return sum(a * b + b for a, b in layer_sizes(hidden_sizes, input_dim, classes))


def flops(hidden_sizes: Sequence[int], input_dim: int = INPUT_DIM,
          classes: int = CLASSES) -> int:
  """One example's forward pass through the dense layers: a layer of a inputs and b
  outputs takes a x b multiplications and a x b additions (a - 1 within each dot,
  one for the bias). ReLU and softmax are not counted: they are comparisons and
  exponentials, not multiply-adds, and cost the same for every width's output."""
  return sum(2 * a * b for a, b in layer_sizes(hidden_sizes, input_dim, classes))


def of(name: str, hidden_sizes: Sequence[int]) -> int:
  """The cost called `name` (one of COSTS) of a network with these hidden sizes."""
  return {'parameter_count': parameter_count, 'flops': flops}[name](hidden_sizes)
