import struct
import zlib

import numpy as np
import pytest

from services.embedder.cache import record

KEY = "voxcache:cond:ecapa:0123456789abcdef:" + "ab" * 32


def ecapa_vector() -> np.ndarray:
    v = np.random.default_rng(0).standard_normal(192).astype(np.float32)
    return v / np.linalg.norm(v)


def test_round_trip_is_bit_identical_and_small() -> None:
    vector = ecapa_vector()
    value = record.encode(KEY, {"speaker": vector})
    assert len(value) <= 800
    decoded = record.decode(KEY, value)
    assert list(decoded) == ["speaker"]
    assert decoded["speaker"].dtype == np.float32 and decoded["speaker"].shape == (192,)
    assert decoded["speaker"].tobytes() == vector.tobytes()


def test_several_tensors_mixed_dtypes() -> None:
    rng = np.random.default_rng(1)
    tensors = {
        "spk_cond_emb": rng.standard_normal((1, 250, 1024)).astype(np.float16),
        "style": rng.standard_normal((1, 192)).astype(np.float32),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    decoded = record.decode(KEY, record.encode(KEY, tensors))
    for name, array in tensors.items():
        assert decoded[name].dtype == array.dtype and decoded[name].shape == array.shape
        assert np.array_equal(decoded[name], array)


def test_layout_is_documented_little_endian() -> None:
    """Another language can parse it from the docstring alone."""
    value = record.encode(KEY, {"speaker": np.arange(3, dtype=np.float32)})
    assert value[:4] == b"VXCR" and value[4] == 1 and value[6] == 1
    assert value[7] == len("speaker") and value[8:15] == b"speaker"
    assert value[15] == 1 and value[16] == 1 and struct.unpack_from("<I", value, 17) == (3,)
    assert np.frombuffer(value[21:33], "<f4").tolist() == [0.0, 1.0, 2.0]
    (crc,) = struct.unpack("<I", value[-4:])
    assert crc == zlib.crc32(KEY.encode() + value[:-4])


@pytest.mark.parametrize("position", [0, 5, 20, 400, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    value = bytearray(record.encode(KEY, {"speaker": ecapa_vector()}))
    value[position] ^= 0x40
    with pytest.raises(record.RecordError):
        record.decode(KEY, bytes(value))


def test_truncated_or_garbage_or_misplaced_values_are_rejected() -> None:
    value = record.encode(KEY, {"speaker": ecapa_vector()})
    for bad in (value[:-10], value[:3], b"", b"\x80\x04pickle" * 10):
        with pytest.raises(record.RecordError):
            record.decode(KEY, bad)
    with pytest.raises(record.RecordError, match="checksum"):
        record.decode(KEY.replace("ab", "cd", 1), value)


def test_refuses_unsupported_dtype() -> None:
    with pytest.raises(ValueError, match="float64"):
        record.encode(KEY, {"x": np.zeros(3)})
