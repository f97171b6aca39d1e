"""The one rule for a diverged member, on losses measured in real runs."""

import pytest

from jaxmlp.core import divergence


@pytest.mark.parametrize('losses, expected', [
    ([2.3, 1.0, 0.5], False),
    ([2.3, None, 0.5], True),                     # not finite: recorded as null
    ([2.3, float('nan')], True),
    ([4.7e20, 8.2e17, 6.0e5, 6.6e5], True),       # Adam at lr 1e6, full data (measured)
    ([1.55e12, 7.41e11, 3.49e11, 2.3], False),   # SGD + N(10) kernels, L2 0.1 (measured)
    ([3.29e9, 2.3, 2.3], False),                  # the init study (measured)
    ([0.25, 0.2, 0.25e6], False),                 # a millionfold exactly: not past it
    ([0.25, 0.2, 0.26e6], True),                  # grew past a millionfold
])
def test_a_member_diverged_when_a_loss_is_not_finite_or_past_the_bounds(losses, expected):
  assert divergence.diverged(losses) == expected


def test_a_members_record_applies_the_rule_to_its_training_validation_and_test_losses():
  from jaxmlp.store import records   # pylint: disable=import-outside-toplevel
  sane = dict(train_loss=[2.3, 1.0], val_loss=[2.0, 0.9])
  assert not records.diverged(sane, 0.8, tested=True)
  assert records.diverged(dict(sane, train_loss=[2.3, 4.7e20]))   # finite, far too large
  assert records.diverged(sane, 4.7e20, tested=True)
  assert not records.diverged(sane, 4.7e20, tested=False)
  # The growth bound counts from the first epoch's training loss, not validation's.
  assert records.diverged(dict(train_loss=[1e-3, 1e-3], val_loss=[2e3, 2e3]))
