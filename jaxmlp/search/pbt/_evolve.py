"""What changes a PBT program's members between epochs (engine.program.Evolve): the
population's exploit and explore, and a schedule replayed (the winner retrained).

An exploit is one jitted gather over the member axis of the program's state and
tracker (across devices when the population spans them), compiled before the first
epoch; explore writes new values into the same-shaped hyperparameter arrays. So the
epoch program is compiled once, and nothing leaves the devices but the scores.

A member that copies a donor takes the donor's past too (its history, schedule and
ancestry rows up to now), so a member's record always describes the weights it ends
with: its schedule is the one to replay, and its best epoch is its tracker's.
"""

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmlp.engine import devices
from jaxmlp.search.pbt import _rules
from jaxmlp.studies import study as study_lib

CLONE_TAG = 0x9B7   # keeps a clone's stream apart from every stream train.py folds

# Every XLA compilation in this process (jax's monitoring event), so a PBT program can
# show that nothing compiles while it evolves.
_compiles = [0]


def _count_compile(event: str, duration: float, **_) -> None:
  del duration
  if event == '/jax/core/compile/backend_compile_duration':
    _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def compiles() -> int:
  return _compiles[0]


def clone_key(seed, member, generation):
  """A clone's fresh stream: folded from its seed's key, its member id and the
  generation, so it diverges from its donor's (and from its own earlier streams)."""
  key = jax.random.fold_in(jax.random.key(seed), CLONE_TAG)
  return jax.random.fold_in(jax.random.fold_in(key, member), generation)


def _exploit(state, tracker, source_M, fresh_M, seed_M, member_M, generation):
  """Rows `source_M` of the state and tracker; where `fresh_M`, a clone's new key."""
  state, tracker = jax.tree.map(lambda x: x[source_M], (state, tracker))
  new_keys = jax.random.key_data(jax.vmap(clone_key, (0, 0, None))(seed_M, member_M,
                                                                     generation))
  old_keys = jax.random.key_data(state.key)
  keep = fresh_M.reshape((-1,) + (1,) * (old_keys.ndim - 1))
  key = jax.random.wrap_key_data(jnp.where(keep, new_keys, old_keys))
  return state._replace(key=key), tracker


@functools.lru_cache(maxsize=8)
def exploit_program(mesh: Mesh):
  """The exploit, jitted for a mesh; its outputs keep the member sharding."""
  return jax.jit(_exploit, out_shardings=NamedSharding(mesh, P(devices.MEMBER_AXIS)),
                 donate_argnums=(0, 1))


class _Members:
  """What both evolves share: the member arrays on the devices, the hyperparameters
  the fixed fields and the explored values make, the schedule, the exploit."""

  def __init__(self, members: list[study_lib.Member], dims: list[_rules.Dimension],
               values_MF: np.ndarray, epochs: int, mesh: Mesh, size: int):
    self.members, self.dims, self.epochs = members, dims, epochs
    self.n, self.size = len(members), size
    self.sharding = NamedSharding(mesh, P(devices.MEMBER_AXIS))
    self.run = exploit_program(mesh)
    self.values_MF = np.asarray(values_MF, np.float32).copy()
    n, f = self.values_MF.shape
    self.schedule_MEF = np.full((n, epochs, f), np.nan, np.float32)
    self.hparams = self._hparams()
    self.compiled = None
    self.compiles_at_start = None
    self.block = size // mesh.size   # members per device, padding included
    self.devices = mesh.size
    self.epoch_compiles = 0   # run_program compiles the epoch program, then prepares this

  def _put(self, x):
    return devices.to_devices(devices.pad_members(np.asarray(x), self.size), self.sharding)

  def _hparams(self) -> dict[str, np.ndarray]:
    rows = [study_lib.hparams_of({**m.values, **{d.field: float(v) for d, v in
                                                 zip(self.dims, self.values_MF[k])}})
            for k, m in enumerate(self.members)]
    return {name: np.array([r[name] for r in rows], np.float32) for name in rows[0]}

  def _args(self, source_M, fresh_M, seed_M, member_M, generation):
    return (self._put(np.asarray(source_M, np.int32)), self._put(np.asarray(fresh_M, bool)),
            self._put(np.asarray(seed_M, np.uint32)), self._put(np.asarray(member_M, np.int32)),
            jnp.int32(generation))

  def prepare(self, state, tracker) -> None:
    self.epoch_compiles += 1
    identity = np.arange(self.n)
    self.compiled = self.run.lower(state, tracker, *self._args(
        identity, np.zeros(self.n, bool), identity, identity, 0)).compile()
    self.compiles_at_start = compiles()

  def exploit(self, state, tracker, source_M, fresh_M, seed_M, member_M, generation):
    # Padding rows keep themselves (pad_members repeats row 0: source 0 is row 0).
    return self.compiled(state, tracker, *self._args(source_M, fresh_M, seed_M, member_M,
                                                     generation))

  def used(self, epoch: int) -> dict[str, np.ndarray]:
    return {f'hp/{d.field}': self.values_MF[:, i].copy() for i, d in enumerate(self.dims)}

  def schedule(self) -> dict[str, np.ndarray]:
    return {d.field: self.schedule_MEF[:, :, i] for i, d in enumerate(self.dims)}


class Population(_Members):
  """Population-based training of one program's members (pbt.py builds it):
  every `pbt_interval` epochs, ranked by the last epoch's objective, the bottom
  quantile copies the top's state and explores (_rules.decide)."""

  def __init__(self, members, dims, values_MF, epochs, mesh, size, config,
               on_generation: Callable[['Population', int], None] | None = None,
               explore: Callable | None = None):
    super().__init__(members, dims, values_MF, epochs, mesh, size)
    self.config = config
    # (population, scores_M, generation) -> [(target, donor, new values)]: PBT's
    # rules, or another search's (PB2's bandit).
    self.explore = explore or (lambda p, scores_M, g: _rules.decide(
        scores_M, p.values_MF, p.dims, p.config, g, p.violation_M))
    self.tracked = study_lib.tracked_objective(config.objective)
    self.several = len(study_lib.objectives(config.objective)) > 1
    self.violation_M = None   # several objectives with constraints: the last ranking's
    self.on_generation = on_generation
    # At least one row: a run no longer than its interval never exploits, and a
    # checkpoint cannot hold an array of size zero.
    generations = max(1, (epochs - 1) // config.pbt.interval)
    n, f = self.values_MF.shape
    self.origin_ME = np.full((n, epochs), -1, np.int32)   # whose stream trained epoch e
    self.keygen_ME = np.full((n, epochs), -1, np.int32)   # and since which generation
    self.stream_M = np.arange(n, dtype=np.int32)           # (member, generation) now
    self.stream_gen_M = np.zeros(n, np.int32)
    self.donor_GM = np.full((generations, n), -1, np.int32)
    self.score_GM = np.full((generations, n), np.nan, np.float32)
    self.old_GMF = np.full((generations, n, f), np.nan, np.float32)
    self.new_GMF = np.full((generations, n, f), np.nan, np.float32)
    # Seconds (float32: what a checkpoint holds of them).
    self.exploit_s = np.zeros(generations, np.float32)
    self.epoch_s = np.zeros(epochs, np.float32)
    self.history = None
    self.last_at = None
    self.compiles_during = 0

  def saved(self) -> dict[str, np.ndarray]:
    return dict(values=self.values_MF, schedule=self.schedule_MEF, origin=self.origin_ME,
                keygen=self.keygen_ME, stream=self.stream_M, stream_gen=self.stream_gen_M,
                donor=self.donor_GM, score=self.score_GM, old=self.old_GMF, new=self.new_GMF,
                exploit_s=self.exploit_s, epoch_s=self.epoch_s)

  def restore(self, saved: dict[str, np.ndarray], done: int) -> None:
    del done
    for name, attr in (('values', 'values_MF'), ('schedule', 'schedule_MEF'),
                       ('origin', 'origin_ME'), ('keygen', 'keygen_ME'),
                       ('stream', 'stream_M'), ('stream_gen', 'stream_gen_M'),
                       ('donor', 'donor_GM'), ('score', 'score_GM'), ('old', 'old_GMF'),
                       ('new', 'new_GMF'), ('exploit_s', 'exploit_s'), ('epoch_s', 'epoch_s')):
      setattr(self, attr, np.array(saved[name], dtype=getattr(self, attr).dtype))
    self.hparams = self._hparams()

  def prepare(self, state, tracker) -> None:
    super().prepare(state, tracker)
    self.last_at = time.perf_counter()

  def after_epoch(self, done, state, tracker, history):
    self.history = history
    epoch = done - 1
    now = time.perf_counter()
    self.epoch_s[epoch] = now - self.last_at
    self.schedule_MEF[:, epoch] = self.values_MF
    self.origin_ME[:, epoch] = self.stream_M
    self.keygen_ME[:, epoch] = self.stream_gen_M
    changed = False
    if done % self.config.pbt.interval == 0 and done < self.epochs:
      state, tracker, changed = self._generation(done, state, tracker, history)
      self.exploit_s[done // self.config.pbt.interval - 1] = time.perf_counter() - now
    self.compiles_during = compiles() - self.compiles_at_start
    self.last_at = time.perf_counter()
    return state, tracker, changed

  def _generation(self, done, state, tracker, history):
    g = done // self.config.pbt.interval   # 1, 2, ...
    scores = np.asarray(history[self.tracked][:, done - 1], np.float32)
    self.score_GM[g - 1] = scores
    if self.several:   # ranked by Pareto dominance: losses (M, K), feasible first
      scores, self.violation_M = _rules.pareto_scores(history, done, self.members,
                                                      self.config)
    decisions = self.explore(self, scores, g)
    if not decisions:
      return state, tracker, False
    source = np.arange(self.n)
    fresh = np.zeros(self.n, bool)
    for target, donor, new in decisions:
      source[target], fresh[target] = donor, True
      self.donor_GM[g - 1, target] = donor
      self.old_GMF[g - 1, target] = self.values_MF[target]
      self.new_GMF[g - 1, target] = new
      for rows in (*history.values(), self.schedule_MEF, self.origin_ME, self.keygen_ME):
        rows[target, :done] = rows[donor, :done]
    for target, _, new in decisions:   # after every copy: no donor is a target
      self.values_MF[target] = new
      self.stream_M[target], self.stream_gen_M[target] = target, g
    seeds = [m.seed for m in self.members]
    state, tracker = self.exploit(state, tracker, source, fresh, seeds, np.arange(self.n), g)
    jax.block_until_ready(tracker)
    self.hparams = self._hparams()
    if self.on_generation is not None:
      self.on_generation(self, done)
    return state, tracker, True

  def finish(self) -> dict[str, np.ndarray]:
    if self.on_generation is not None:
      self.on_generation(self, self.epochs)
    return self.schedule()


class Replay(_Members):
  """Trains one schedule: the hyperparameters of epoch e from `schedule_EF` (its last
  row after its end: a final model may train longer), and, where `streams` gives
  them, the random streams of the lineage it replays ((member, generation, seed) per
  epoch: a change of stream at epoch e is the clone's new key)."""

  def __init__(self, members, dims, schedule_EF: np.ndarray, epochs, mesh, size,
               streams: list[tuple[int, int, int]] | None = None, layout=None):
    self.plan_EF = np.asarray(schedule_EF, np.float32)
    values = np.repeat(self.plan_EF[:1], len(members), axis=0)
    super().__init__(members, dims, values, epochs, mesh, size)
    self.streams = streams
    self.layout = layout   # (mesh, block) to run in, else the planner's (plan.run)

  def _row(self, epoch: int) -> np.ndarray:
    return self.plan_EF[min(epoch, len(self.plan_EF) - 1)]

  def saved(self) -> dict[str, np.ndarray]:
    return dict(values=self.values_MF, schedule=self.schedule_MEF)

  def restore(self, saved, done) -> None:
    del done
    self.values_MF = np.array(saved['values'], np.float32)
    self.schedule_MEF = np.array(saved['schedule'], np.float32)
    self.hparams = self._hparams()

  def after_epoch(self, done, state, tracker, history):
    del history
    self.schedule_MEF[:, done - 1] = self.values_MF
    if done >= self.epochs:
      return state, tracker, False
    new = np.repeat(self._row(done)[None], self.n, axis=0)
    changed = not np.array_equal(new, self.values_MF)
    self.values_MF = new
    if self.streams is not None and done < len(self.streams) and (
        self.streams[done] != self.streams[done - 1]):
      member, generation, seed = self.streams[done]
      identity = np.arange(self.n)
      state, tracker = self.exploit(state, tracker, identity, np.ones(self.n, bool),
                                    [seed] * self.n, [member] * self.n, generation)
    if changed:
      self.hparams = self._hparams()
    return state, tracker, changed

  def finish(self) -> dict[str, np.ndarray]:
    return self.schedule()


def describe(population: Population) -> dict[str, Any]:
  """The population's figures for pbt.json."""
  epochs_run = population.epoch_s[population.epoch_s > 0]
  exploits = population.exploit_s[population.exploit_s > 0]
  return dict(members_per_device=population.block, devices=population.devices,
              epoch_program_compiles=population.epoch_compiles,
              compiles_while_evolving=int(population.compiles_during),
              epoch_s_median=float(np.median(epochs_run)) if len(epochs_run) else None,
              exploit_s_median=float(np.median(exploits)) if len(exploits) else None,
              exploit_s=[float(s) for s in population.exploit_s],
              epoch_s=[float(s) for s in population.epoch_s])
