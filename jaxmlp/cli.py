"""What every command line of jaxmlp shares: quiet logs and one-line errors."""

import logging
import sys

from absl import flags
from absl import logging as absl_logging


def quiet_logs() -> None:
  """WARNING and above, unless --verbosity was given; call after flags are parsed."""
  # jax logs at INFO that it found no TPU on every CPU or GPU machine.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
  if not flags.FLAGS['verbosity'].present:
    absl_logging.set_verbosity(absl_logging.WARNING)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a mistake in a flag reported as one line and exit code 2
  (absl's own exits 1 with 'FATAL Flags parsing error'); --help exits 0."""
  try:
    return flags.FLAGS(argv)
  except SystemExit as e:   # absl exits 1 after printing --help: asking is no failure
    asked = any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv)
    sys.exit(0 if asked else e.code)
  except flags.Error as e:
    fail(str(e))
  return []


def fail(message: str, code: int = 2) -> None:
  """A user's mistake: one line on stderr, no traceback, a non-zero exit."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(code)
