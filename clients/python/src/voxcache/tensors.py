"""numpy <-> voxcache.v1.Tensor, the one wire layout for float tensors.

Raw little-endian row-major bytes instead of `repeated float`: the same wire
size, but encoding is a memcpy (6-60x faster measured) and Go, Java and numpy
read it without a protobuf float loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

import numpy as np

from voxcache.v1 import tensor_pb2

_NUMPY_BY_DTYPE: dict[int, np.dtype] = {
    tensor_pb2.DTYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DTYPE_FLOAT16: np.dtype("<f2"),
}
_DTYPE_BY_KIND: dict[str, int] = {"float32": tensor_pb2.DTYPE_FLOAT32, "float16": tensor_pb2.DTYPE_FLOAT16}
#: The same by numpy's own (native little-endian) dtype objects: `array.dtype.name` builds a new
#: string per call, which measured ~9 µs of a cache hit's answer in the server.
_DTYPE_BY_NUMPY: dict[np.dtype, int] = {np.dtype(kind): code for kind, code in _DTYPE_BY_KIND.items()}

# The names of the tensors in Conditioning.tensors (documented in tensor.proto).
#: ECAPA ("ecapa" encoder): the speaker vector, float32 (192,), L2-normalised.
SPEAKER = "speaker"
#: IndexTTS2 ("indextts2" encoder): w2v-BERT layer-17 features, (1, T, 1024).
SPK_COND_EMB = "spk_cond_emb"
#: IndexTTS2: CAMPPlus style vector, (1, 192).
STYLE = "style"
#: IndexTTS2: s2mel length-regulated prompt, (1, T', 512).
PROMPT_CONDITION = "prompt_condition"
#: IndexTTS2: the reference's 22.05 kHz mel spectrogram, (1, 80, T').
REF_MEL = "ref_mel"
#: IndexTTS2, optional: emotion features, (1, T, 1024).
EMO_COND_EMB = "emo_cond_emb"
#: Every IndexTTS2 tensor a bundle must carry.
INDEXTTS2_REQUIRED = (SPK_COND_EMB, STYLE, PROMPT_CONDITION, REF_MEL)

#: Largest tensor accepted from the wire; bounds the memory a bad message can cost.
MAX_TENSOR_ELEMENTS = 64 * 1024 * 1024


class TensorFormatError(ValueError):
    """A Tensor message whose dtype, shape and byte length do not agree."""


def to_proto(array: np.ndarray) -> tensor_pb2.Tensor:
    """Encode a float32/float16 array; other dtypes are refused, not silently cast."""
    tensor = tensor_pb2.Tensor()
    _fill(tensor, array)
    return tensor


def _fill(tensor: tensor_pb2.Tensor, array: np.ndarray) -> None:
    """`array` into an empty Tensor message in place: a map entry or a field is filled where it
    is, instead of building a message and copying it in."""
    dtype = _DTYPE_BY_NUMPY.get(array.dtype)
    if dtype is None:
        dtype = _DTYPE_BY_KIND.get(array.dtype.name)  # another byte order of a supported kind
    if dtype is None:
        raise TensorFormatError(f"unsupported dtype {array.dtype}; use float32 or float16")
    tensor.dtype = dtype
    tensor.shape.extend(array.shape)
    tensor.data = np.ascontiguousarray(array, dtype=_NUMPY_BY_DTYPE[dtype]).tobytes()


def from_proto(tensor: tensor_pb2.Tensor, *, name: str = "tensor") -> np.ndarray:
    """Decode and validate; the result is a read-only view of the message bytes."""
    np_dtype = _NUMPY_BY_DTYPE.get(tensor.dtype)
    if np_dtype is None:
        raise TensorFormatError(f"{name}: unsupported dtype {tensor.dtype}; expected FLOAT32 or FLOAT16")
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise TensorFormatError(f"{name}: negative dimension in shape {shape}")
    count = prod(shape)
    if count > MAX_TENSOR_ELEMENTS:
        raise TensorFormatError(f"{name}: {count} elements exceeds the limit of {MAX_TENSOR_ELEMENTS}")
    expected = count * np_dtype.itemsize
    if len(tensor.data) != expected:
        raise TensorFormatError(
            f"{name}: shape {shape} needs {expected} bytes of {np_dtype.name}, got {len(tensor.data)}"
        )
    return np.frombuffer(tensor.data, dtype=np_dtype).reshape(shape)


def map_to_proto(arrays: Mapping[str, np.ndarray], target: object) -> None:
    """Fill a `map<string, Tensor>` field in place (protobuf maps cannot be assigned)."""
    for key, array in arrays.items():
        entry = target[key]  # type: ignore[index]
        entry.Clear()
        _fill(entry, array)


def map_from_proto(tensors: Mapping[str, tensor_pb2.Tensor]) -> dict[str, np.ndarray]:
    return {key: from_proto(value, name=key) for key, value in tensors.items()}
