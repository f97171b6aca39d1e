"""Reading MNIST-style IDX files and checking that they hold what MNIST does."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import struct
import zlib

import numpy as np

from jaxmlp.common.errors import DataError

FILES: dict[str, str] = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}

# SHA-256 of the decompressed originals; hashing the decompressed bytes makes
# the check independent of how a mirror or a user happened to gzip them.
SHA256: dict[str, str] = {
    'train-images-idx3-ubyte':
        'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    'train-labels-idx1-ubyte':
        '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    't10k-images-idx3-ubyte':
        '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    't10k-labels-idx1-ubyte':
        'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
}

_LABELS_MAGIC = 0x00000801
_IMAGES_MAGIC = 0x00000803
_UBYTE = 0x08
IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10
_MNIST_COUNTS = {'train': 60000, 'test': 10000}
_GZIP_MAGIC = b'\x1f\x8b'
DEFAULT_FIX = 'replace it with an intact copy'


def _read_bytes(path: pathlib.Path, where: str, fix: str) -> bytes:
  """Returns the decompressed content; gzip is detected by content, not name.

  Users rename files freely (and some mirrors serve raw bytes under .gz), so
  the magic bytes are the only reliable signal.
  """
  try:
    raw = path.read_bytes()
  except OSError as e:
    raise DataError(f'cannot read {where}: {e.strerror or e}: {fix}') from e
  if raw[:2] != _GZIP_MAGIC:
    return raw
  try:
    return gzip.decompress(raw)
  except EOFError as e:
    raise DataError(f'{where}: truncated gzip stream ({e}): {fix}') from e
  except (gzip.BadGzipFile, zlib.error, OSError) as e:
    raise DataError(f'{where}: corrupt gzip data ({e}): {fix}') from e


def _parse_header(data: bytes, where: str,
                  fix: str) -> tuple[tuple[int, ...], int]:
  """Returns (dims, header length) after checking magic and type byte."""
  if len(data) < 4:
    raise DataError(f'{where}: truncated: {len(data)} bytes is shorter than an '
                    f'IDX header: {fix}')
  (magic,) = struct.unpack('>I', data[:4])
  if data[:2] == b'\0\0' and data[2] != _UBYTE and data[3] in (1, 3):
    raise DataError(f'{where}: unsupported IDX data type 0x{data[2]:02x}, only '
                    f'unsigned bytes (0x08) are supported: {fix}')
  if magic not in (_LABELS_MAGIC, _IMAGES_MAGIC):
    raise DataError(f'{where}: bad magic number 0x{magic:08x}, expected '
                    f'0x{_LABELS_MAGIC:08x} (labels) or 0x{_IMAGES_MAGIC:08x} '
                    f'(images); is it an MNIST-style IDX file? {fix}')
  ndim = magic & 0xff
  header_len = 4 + 4 * ndim
  if len(data) < header_len:
    raise DataError(f'{where}: truncated: the IDX header needs {header_len} '
                    f'bytes but the file holds {len(data)}: {fix}')
  dims = struct.unpack(f'>{ndim}I', data[4:header_len])
  return dims, header_len


def _describe(dims: tuple[int, ...]) -> str:
  """Names what a header declares, for size-mismatch messages."""
  if len(dims) == 1:
    return f'{dims[0]} labels ({dims[0]} bytes)'
  shape = 'x'.join(str(d) for d in dims[1:])
  return f'{dims[0]} images of {shape} ({int(np.prod(dims))} bytes)'


def decode(path: pathlib.Path,
           *,
           want_digest: bool,
           fix: str = DEFAULT_FIX,
           where: str | None = None) -> tuple[np.ndarray, str | None]:
  """Parses and structurally checks one IDX file; optionally hashes it.

  The digest is returned rather than compared here so callers can run their
  own structural checks (label range, counts) first and report those, which
  say far more than "checksum mismatch".
  """
  where = where or str(path)
  data = _read_bytes(path, where, fix)
  dims, header_len = _parse_header(data, where, fix)
  declared = int(np.prod(dims, dtype=np.int64))
  held = len(data) - header_len
  if held < declared:
    raise DataError(f'{where}: truncated: header declares {_describe(dims)} '
                    f'but file holds {held} bytes: {fix}')
  if held > declared:
    raise DataError(f'{where}: trailing bytes: header declares '
                    f'{_describe(dims)} but file holds {held} bytes '
                    f'({held - declared} extra): {fix}')
  array = np.frombuffer(data, np.uint8, offset=header_len).reshape(dims)
  digest = hashlib.sha256(data).hexdigest() if want_digest else None
  # Copy so callers get an ordinary writable array, not a view of `bytes`.
  return array.copy(), digest


def check_digest(where: str, digest: str | None, expected: str,
                 fix: str) -> None:
  if digest != expected:
    raise DataError(f'{where}: sha256 of the decompressed content is {digest}, '
                    f'not the MNIST original {expected}: {fix}')


def read_idx(path: str | os.PathLike,
             *,
             expected_sha256: str | None = None) -> np.ndarray:
  """Reads a gzipped or raw IDX file of unsigned bytes, refusing anything off.

  Truncated or padded files are errors rather than being cropped, because a
  silently short dataset would skew a reproduction without any sign.

  Args:
    path: the file; gzip is detected from its first bytes.
    expected_sha256: if given, the SHA-256 the decompressed bytes must have.

  Returns:
    A uint8 array shaped as the header declares, e.g. (N, 28, 28) or (N,).

  Raises:
    DataError: naming the file and the problem.
  """
  path = pathlib.Path(path)
  array, digest = decode(path, want_digest=expected_sha256 is not None)
  if expected_sha256 is not None:
    check_digest(str(path), digest, expected_sha256, DEFAULT_FIX)
  return array


def check_kind(path: pathlib.Path, array: np.ndarray, images: bool) -> None:
  """Catches swapped or mislabelled files before they are used as data."""
  if images and array.ndim != 3:
    raise DataError(f'{path}: holds labels, but an image file (magic '
                    f'0x{_IMAGES_MAGIC:08x}) belongs here: check the file '
                    f'names')
  if not images and array.ndim != 1:
    raise DataError(f'{path}: holds images, but a label file (magic '
                    f'0x{_LABELS_MAGIC:08x}) belongs here: check the file '
                    f'names')
  if images and array.shape[1:] != IMAGE_SHAPE:
    raise DataError(f'{path}: images are {array.shape[1]}x{array.shape[2]}, '
                    f'but the MLP needs 28x28: use an MNIST-style dataset')


def check_labels(where: str, labels: np.ndarray) -> None:
  bad = np.flatnonzero(labels >= _NUM_CLASSES)
  if bad.size:
    raise DataError(f'{where}: label {int(labels[bad[0]])} out of range '
                    f'0..{_NUM_CLASSES - 1} at row {int(bad[0])}: replace it '
                    f'with an intact copy')


def check_counts(part: str, images: np.ndarray, labels: np.ndarray,
                 verify_checksums: bool) -> None:
  if len(images) != len(labels):
    raise DataError(f'{part} split has {len(images)} images but '
                    f'{len(labels)} labels: the image and label files must '
                    f'come from the same dataset')
  if verify_checksums and len(images) != _MNIST_COUNTS[part]:
    raise DataError(f'{part} split has {len(images)} examples but MNIST has '
                    f'{_MNIST_COUNTS[part]}: use the original MNIST files, or '
                    f'turn off checksum verification for another dataset')
