import numpy as np
import pytest

from voxcache import tensors
from voxcache.v1 import tensor_pb2


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_round_trip_little_endian_row_major(dtype: type) -> None:
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    message = tensors.to_proto(array)
    assert list(message.shape) == [2, 3, 4]
    assert message.data == array.astype(np.dtype(dtype).newbyteorder("<")).tobytes(order="C")
    back = tensors.from_proto(message)
    assert back.dtype == dtype and np.array_equal(back, array)


def test_big_endian_and_non_contiguous_input_is_normalised() -> None:
    array = np.arange(12, dtype=">f4").reshape(3, 4).T
    assert np.array_equal(tensors.from_proto(tensors.to_proto(array)), array)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[3], data=b"\0" * 8), "needs 12 bytes"),
        (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UNSPECIFIED, shape=[1], data=b"\0" * 4), "unsupported dtype"),
        (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT16, shape=[-1], data=b""), "negative"),
        (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[1 << 20, 1 << 20], data=b""), "exceeds the limit"),
    ],
)
def test_malformed_tensors_are_refused(message: tensor_pb2.Tensor, match: str) -> None:
    with pytest.raises(tensors.TensorFormatError, match=match):
        tensors.from_proto(message)


def test_other_dtypes_are_not_silently_cast() -> None:
    with pytest.raises(tensors.TensorFormatError, match="float64"):
        tensors.to_proto(np.zeros(3))


def test_every_tensor_name_the_contract_documents_is_a_constant() -> None:
    import re

    from services.common.paths import REPO_ROOT

    proto = (REPO_ROOT / "protos" / "voxcache" / "v1" / "tensor.proto").read_text()
    documented = set(re.findall(r'^\s*//.*?"([a-z_]+)"\s+(?:float32|\()', proto, flags=re.MULTILINE))
    exported = {value for name, value in vars(tensors).items() if name.isupper() and isinstance(value, str)}
    assert documented == exported == {"speaker", "spk_cond_emb", "style", "prompt_condition", "ref_mel", "emo_cond_emb"}
