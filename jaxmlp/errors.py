"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
  """Bad input or environment; the CLI prints it as one line and exits 2."""
