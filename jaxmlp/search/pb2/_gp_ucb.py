"""PB2's explore step, on the host: new values for members that copied a donor, from
a time-varying Gaussian-process bandit (GP-UCB), as Ray Tune's PB2 chooses them.

The GP predicts how fast an interval raised the score (y) from when it ended, the
score it started from (optional) and the values it trained with; new values maximize
its upper confidence bound at the donor's time and score. Ray's pb2.py and
pb2_utils.py in numpy and scipy, with these changes:
- every draw comes from the caller's generator, so a seed decides everything;
- the fit follows the exact likelihood gradient from fixed starts (Ray's GPy kernel's
  gradients do not match its K), with epsilon kept in [0, 0.5], where K clips it;
- the GP that scores the variance (Ray's m1) keeps the fitted hyperparameters when
  the round's chosen values join it (GP-BUCB, which Ray cites); Ray refits them to the
  zero labels it gives those values, so made-up labels move them;
- log dimensions are searched in log space; values come back float32, inside bounds;
- non-finite scores (a diverged member) are dropped, as Ray drops NaN ones;
- fewer than 2 finite scores, or all equal, tell the GP nothing: values are drawn
  uniformly within the bounds (log-uniformly on log ones), as Ray fills a missing
  config. Ray fits what it has, and keeps the donor's config while it has no data.
"""

import contextlib
import ctypes
import dataclasses
import functools

import numpy as np
from scipy import linalg, optimize

MIN_LENGTH, LENGTH_STEP = 200, 10   # select_length: fewer points are all kept
MAX_POINTS = 1000                   # Ray fits the latest 1000, so the GP stays fast
ACQ_STARTS, ACQ_ITERS = 10, 200     # optimize_acq's random starts, L-BFGS-B budget
C1, C2 = 0.2, 0.4                   # UCB's beta_t = C1 + max(0, log(C2 * N))
EPSILON_MAX = 0.5                   # TV_SquaredExp clips its time decay here
# (variance, lengthscale, epsilon, noise) to fit from: Ray's (GPy's defaults) first;
# the others reach short lengthscales and low noise one start can miss.
STARTS = ((1.0, 1.0, 0.1, 1.0), (1.0, 0.1, 0.1, 0.1), (1.0, 0.01, 0.1, 0.01))
# The fit's box in (log variance, log lengthscale, epsilon, log noise). The noise floor
# keeps K + noise positive definite, so a Cholesky factor never fails.
BOUNDS = ((np.log(1e-3), np.log(1e2)), (np.log(1e-3), np.log(1e2)), (0.0, EPSILON_MAX),
          (np.log(1e-6), np.log(1e1)))


@dataclasses.dataclass(frozen=True)
class Hyper:
  """TV_SquaredExp's parameters, and GPRegression's noise variance."""
  variance: float = 1.0
  lengthscale: float = 1.0
  epsilon: float = 0.1
  noise: float = 1.0


@dataclasses.dataclass(frozen=True)
class Posterior:
  """A GP conditioned on Z_NK: its Cholesky factor and K^-1 y."""
  Z_NK: np.ndarray
  hyper: Hyper
  chol_NN: np.ndarray
  alpha_N: np.ndarray


@functools.cache
def _openblas_libs() -> tuple[ctypes.CDLL, ...]:
  """The OpenBLAS copies loaded here (numpy and scipy bundle one each) that can set
  one thread's own thread count; none off Linux or with another BLAS."""
  try:
    with open('/proc/self/maps') as maps:
      paths = sorted({line.split()[-1] for line in maps if 'openblas' in line.lower()})
    libs = [ctypes.CDLL(path) for path in paths if path.startswith('/')]
  except OSError:
    return ()
  return tuple(lib for lib in libs if hasattr(lib, 'openblas_set_num_threads_local'))


@contextlib.contextmanager
def _one_blas_thread():
  """The GP's algebra on this thread alone. Its matrices are small, and OpenBLAS's
  threads on a busy host (a training program, a parallel test run) made a fit
  10-300x slower. OpenBLAS's per-thread setting: other threads keep theirs."""
  libs = _openblas_libs()
  before = [lib.openblas_set_num_threads_local(1) for lib in libs]
  try:
    yield
  finally:
    for lib, threads in zip(libs, before):
      lib.openblas_set_num_threads_local(threads)


def _distances(A_NK: np.ndarray, B_MK: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(|t_a - t_b|, |a - b|^2 over the other columns): column 0 is time."""
  dt_NM = np.abs(A_NK[:, None, 0] - B_MK[None, :, 0])
  return dt_NM, np.square(A_NK[:, None, 1:] - B_MK[None, :, 1:]).sum(-1)


def kernel(A_NK: np.ndarray, B_MK: np.ndarray, hyper: Hyper) -> np.ndarray:
  """(N, M) TV_SquaredExp: variance * exp(-|a-b|^2 / lengthscale) * (1-epsilon)^(dt/2).
  The time factor lets old intervals count less: a good value may stop being good."""
  dt_NM, d2_NM = _distances(A_NK, B_MK)
  return (hyper.variance * np.exp(-d2_NM / hyper.lengthscale)
          * (1.0 - hyper.epsilon) ** (0.5 * dt_NM))


def _neg_log_likelihood(theta: np.ndarray, dt_NN: np.ndarray, d2_NN: np.ndarray,
                        y_N: np.ndarray) -> tuple[float, np.ndarray]:
  """GPRegression's -log p(y) and its gradient in (log variance, log lengthscale,
  epsilon, log noise): logs keep the positive ones positive, as GPy's Logexp does."""
  (variance, length, noise), eps = np.exp(theta[[0, 1, 3]]), theta[2]
  Kf_NN = variance * np.exp(-d2_NN / length) * (1.0 - eps) ** (0.5 * dt_NN)
  chol_NN = linalg.cholesky(Kf_NN + noise * np.eye(len(y_N)), lower=True)
  alpha_N = linalg.cho_solve((chol_NN, True), y_N)
  nll = (0.5 * y_N @ alpha_N + np.log(np.diag(chol_NN)).sum()
         + 0.5 * len(y_N) * np.log(2 * np.pi))
  Kinv_NN = linalg.lapack.dpotri(chol_NN, lower=1)[0]   # K^-1 from its factor
  Kinv_NN = np.tril(Kinv_NN) + np.tril(Kinv_NN, -1).T
  W_NN = Kinv_NN - np.outer(alpha_N, alpha_N)
  dK = (Kf_NN, Kf_NN * d2_NN / length, -Kf_NN * 0.5 * dt_NN / (1.0 - eps))
  grad = [0.5 * np.sum(W_NN * d) for d in dK] + [0.5 * noise * np.trace(W_NN)]
  return float(nll), np.array(grad)


@_one_blas_thread()
def fit(Z_NK: np.ndarray, y_N: np.ndarray, starts=STARTS) -> tuple[Hyper, float]:
  """The hyperparameters of the largest marginal likelihood, and its log: the best
  L-BFGS-B run from fixed starts, so the same data always fits the same."""
  dt_NN, d2_NN = _distances(Z_NK, Z_NK)
  best = None
  for variance, length, eps, noise in starts:
    theta = np.array([np.log(variance), np.log(length), eps, np.log(noise)])
    res = optimize.minimize(_neg_log_likelihood, theta, args=(dt_NN, d2_NN, y_N),
                            jac=True, method='L-BFGS-B', bounds=BOUNDS)
    if best is None or res.fun < best.fun:
      best = res
  variance, length, noise = np.exp(best.x[[0, 1, 3]]).tolist()
  return Hyper(variance, length, float(best.x[2]), noise), -float(best.fun)


def posterior(Z_NK: np.ndarray, y_N: np.ndarray, hyper: Hyper) -> Posterior:
  """The GP (zero mean, as GPRegression's) conditioned on y_N at Z_NK."""
  chol_NN = linalg.cholesky(kernel(Z_NK, Z_NK, hyper) + hyper.noise * np.eye(len(y_N)),
                            lower=True)
  return Posterior(Z_NK, hyper, chol_NN, linalg.cho_solve((chol_NN, True), y_N))


def predict(post: Posterior, Z_MK: np.ndarray) -> tuple[np.ndarray, ...]:
  """(mean_M, variance_M, d mean_MK, d variance_MK), gradients in Z_MK's columns but
  time. Without the noise GPy's predict adds: a constant, it moves no argmax."""
  k_MN = kernel(Z_MK, post.Z_NK, post.hyper)
  Kk_NM = linalg.cho_solve((post.chol_NN, True), k_MN.T)
  diff_MNK = Z_MK[:, None, 1:] - post.Z_NK[None, :, 1:]
  dk_MNK = k_MN[:, :, None] * (-2.0 * diff_MNK / post.hyper.lengthscale)
  mean_M = k_MN @ post.alpha_N
  var_M = post.hyper.variance - np.einsum('mn,nm->m', k_MN, Kk_NM)
  dmean_MK = np.einsum('mnk,n->mk', dk_MNK, post.alpha_N)
  dvar_MK = -2.0 * np.einsum('mnk,nm->mk', dk_MNK, Kk_NM)
  return mean_M, np.maximum(var_M, 0.0), dmean_MK, dvar_MK


def normalize(V_NK: np.ndarray, lo_K: np.ndarray, hi_K: np.ndarray) -> np.ndarray:
  """Ray's normalize to [0, 1] by (lo, hi); 1e-8 keeps a constant column finite."""
  return (V_NK - lo_K) / (hi_K - lo_K + 1e-8)


def standardize(y_N: np.ndarray) -> np.ndarray:
  """Ray's standardize, clipped to [-2, 2]: one spike does not set the GP's scale."""
  return np.clip((y_N - y_N.mean()) / (y_N.std() + 1e-8), -2.0, 2.0)


def _warp(V_NF: np.ndarray, log_F: np.ndarray) -> np.ndarray:
  """Values in search space: log dimensions in log."""
  return np.where(log_F, np.log(np.where(log_F, V_NF, 1.0)), V_NF)


def _from_unit(U_NF, low_F, high_F, log_F) -> np.ndarray:
  """Raw values of points in [0, 1]^F (Ray's "convert back"), as the float32 numbers
  the program trains with (in float64), inside [low, high] even where a bound is not
  a float32 number."""
  lo_F, hi_F = _warp(low_F, log_F), _warp(high_F, log_F)
  V_NF = U_NF * (hi_F - lo_F) + lo_F
  V_NF = np.clip(np.where(log_F, np.exp(V_NF), V_NF), low_F, high_F).astype(np.float32)
  lo_F, hi_F = low_F.astype(np.float32), high_F.astype(np.float32)
  lo_F = np.where(lo_F < low_F, np.nextafter(lo_F, np.float32(np.inf)), lo_F)
  hi_F = np.where(hi_F > high_F, np.nextafter(hi_F, np.float32(-np.inf)), hi_F)
  return np.minimum(np.maximum(V_NF, lo_F), hi_F).astype(np.float64)


def _unit(X_NF, low_F, high_F, log_F) -> np.ndarray:
  """Raw values in [0, 1]^F by the bounds (Ray's normalize by base_vals)."""
  return normalize(_warp(X_NF, log_F), _warp(low_F, log_F), _warp(high_F, log_F))


@_one_blas_thread()
def select_length(C_NK: np.ndarray, U_NF: np.ndarray, y_N: np.ndarray) -> int:
  """How many of the latest points to fit (Ray): all under MIN_LENGTH, else the
  window (MIN_LENGTH, +LENGTH_STEP, ...) whose fit from Ray's start is likeliest."""
  if len(y_N) < MIN_LENGTH:
    return len(y_N)
  lengths = list(range(MIN_LENGTH, len(y_N) + 1, LENGTH_STEP))
  scores = [fit(*_design(C_NK[-n:], U_NF[-n:], y_N[-n:]), starts=STARTS[:1])[1]
            for n in lengths]
  return lengths[int(np.argmax(scores))]


def _design(C_NK, U_NF, y_N) -> tuple[np.ndarray, np.ndarray]:
  """(Z_NK, standardized y): the context normalized by its own range, then U."""
  Cn_NK = normalize(C_NK, C_NK.min(0), C_NK.max(0))
  return np.hstack([Cn_NK, U_NF]), standardize(y_N)


def _usable(X_NF, t_N, y_N, r_N) -> tuple[np.ndarray, ...]:
  """(context C_NK, X_NF, y_N): finite rows by time, the latest MAX_POINTS."""
  C_NK = t_N[:, None] if r_N is None else np.stack([t_N, r_N], 1)
  ok_N = np.isfinite(y_N) & np.isfinite(C_NK).all(1) & np.isfinite(X_NF).all(1)
  order = np.argsort(C_NK[ok_N, 0], kind='stable')[-MAX_POINTS:]
  return C_NK[ok_N][order], X_NF[ok_N][order], y_N[ok_N][order]


def _optimize_acq(mean: Posterior, fixed_K: np.ndarray, U_CF: np.ndarray, kappa: float,
                  rng: np.random.Generator) -> np.ndarray:
  """One target's point in [0, 1]^F, by Ray's optimize_acq: L-BFGS-B from ACQ_STARTS
  uniform starts, the best UCB kept. UCB = the mean + kappa * the variance (not the
  deviation, as Ray) of a GP that also holds U_CF, the values chosen this round, at
  the target's context: a GP's variance depends on where its points are, not on
  their labels, so zeros do."""
  n_fixed, var = len(fixed_K), mean
  if len(U_CF):
    Z_NK = np.vstack([mean.Z_NK, np.hstack([np.tile(fixed_K, (len(U_CF), 1)), U_CF])])
    var = posterior(Z_NK, np.zeros(len(Z_NK)), mean.hyper)

  def neg_ucb(u_F):
    z_1K = np.concatenate([fixed_K, u_F])[None]
    m, _, dm, _ = predict(mean, z_1K)
    _, v, _, dv = predict(var, z_1K)
    grad = dm[0, n_fixed - 1:] + kappa * dv[0, n_fixed - 1:]
    return -float(m[0] + kappa * v[0]), -grad

  starts_SF = rng.uniform(0.0, 1.0, (ACQ_STARTS, mean.Z_NK.shape[1] - n_fixed))
  best_u, best = starts_SF[0], -np.inf
  for u0_F in starts_SF:
    res = optimize.minimize(neg_ucb, u0_F, jac=True, method='L-BFGS-B',
                            bounds=[(0.0, 1.0)] * len(u0_F),
                            options={'maxiter': ACQ_ITERS, 'maxfun': ACQ_ITERS})
    if -res.fun > best:
      best, best_u = -res.fun, res.x
  return np.clip(best_u, 0.0, 1.0)


@_one_blas_thread()
def explore_batch(X_NF, t_N, y_N, low_F, high_F, log_F, current_CF, n_targets: int,
                  rng: np.random.Generator, *, r_N=None, t_new=None, r_new_T=None
                  ) -> np.ndarray:
  """(n_targets, F) new raw values, chosen one after another as Ray does when several
  members explore in one round: each pick joins current_CF, where it lowers the
  variance, so the next pick goes elsewhere. Arguments as explore's; r_new_T holds
  each target's r_new."""
  low_F, high_F = np.asarray(low_F, np.float64), np.asarray(high_F, np.float64)
  log_F, F = np.asarray(log_F, bool), len(low_F)
  if r_N is not None and r_new_T is None:
    raise ValueError('r_N needs r_new: the score the new values start from')
  C_NK, X_NF, y_N = _usable(np.asarray(X_NF, np.float64).reshape(-1, F),
                            np.asarray(t_N, np.float64), np.asarray(y_N, np.float64),
                            None if r_N is None else np.asarray(r_N, np.float64))
  if len(y_N) >= 2 and np.ptp(y_N) > 0:
    keep = len(y_N) - select_length(C_NK, _unit(X_NF, low_F, high_F, log_F), y_N)
    C_NK, X_NF, y_N = C_NK[keep:], X_NF[keep:], y_N[keep:]
  if len(y_N) < 2 or np.ptp(y_N) == 0:   # nothing to learn: the module's fallback
    return _from_unit(rng.uniform(0.0, 1.0, (n_targets, F)), low_F, high_F, log_F)
  Z_NK, ys_N = _design(C_NK, _unit(X_NF, low_F, high_F, log_F), y_N)
  hyper, _ = fit(Z_NK, ys_N)   # Ray then clips the lengthscale to at most 1
  mean = posterior(Z_NK, ys_N, dataclasses.replace(hyper, lengthscale=min(
      hyper.lengthscale, 1.0)))
  kappa = np.sqrt(C1 + max(0.0, np.log(C2 * len(ys_N))))   # sqrt(beta_t)
  current_CF = np.asarray(current_CF, np.float64).reshape(-1, F)
  current_CF = current_CF[np.isfinite(current_CF).all(1)]
  t_new = C_NK[:, 0].max() if t_new is None else t_new
  out_TF = np.zeros((n_targets, F))
  for i in range(n_targets):
    new_K = np.array([t_new] if r_N is None else [t_new, r_new_T[i]], np.float64)
    fixed_K = normalize(new_K, C_NK.min(0), C_NK.max(0))
    u_F = _optimize_acq(mean, fixed_K, _unit(current_CF, low_F, high_F, log_F), kappa,
                        rng)
    out_TF[i] = _from_unit(u_F, low_F, high_F, log_F)
    current_CF = np.vstack([current_CF, out_TF[i]])
  return out_TF


def explore(X_NF, t_N, y_N, low_F, high_F, log_F, current_CF, rng: np.random.Generator,
            *, r_N=None, t_new=None, r_new=None) -> np.ndarray:
  """(F,) new raw values for one member that copied a donor.

  X_NF: the raw values each past interval trained with; t_N: when it ended; y_N: how
  fast the score (bigger is better) rose over it. r_N (optional): the score it started
  from, a feature of the GP as Ray's R_before. low_F, high_F, log_F: the space.
  current_CF: values already chosen this round (may be empty). t_new: the donor's
  time (default: the latest t); r_new: its r, needed with r_N.
  """
  return explore_batch(X_NF, t_N, y_N, low_F, high_F, log_F, current_CF, 1, rng,
                       r_N=r_N, t_new=t_new,
                       r_new_T=None if r_new is None else [r_new])[0]
