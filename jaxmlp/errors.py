"""The exception types for mistakes a user can fix."""


class UserError(Exception):
  """Bad input or environment; the CLI prints it as one line and exits 2."""


class DataError(UserError):
  """A data problem the user can fix; the message is forced onto one line.

  Messages often embed text from elsewhere (OS errors, URL errors) that may
  hold newlines, and the CLI contract is a single printed line.
  """

  def __init__(self, message: str):
    super().__init__(' '.join(str(message).split()))
