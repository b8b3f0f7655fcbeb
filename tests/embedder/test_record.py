import hashlib
import hmac
import struct

import numpy as np
import pytest

from services.embedder.cache import record

KEY = "voxcache:cond:ecapa:0123456789abcdef:" + "ab" * 32
SECRET = "s3cret-0123456789abcdef"
SIGNED = record.Keyring.parse(f"k1:{SECRET}")


def ecapa_vector() -> np.ndarray:
    v = np.random.default_rng(0).standard_normal(192).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("keyring", [record.UNSIGNED, SIGNED], ids=["unsigned", "signed"])
def test_round_trip_is_bit_identical_and_small(keyring: record.Keyring) -> None:
    vector = ecapa_vector()
    value = record.encode(KEY, {"speaker": vector}, keyring)
    assert len(value) == 822 + len(keyring.signing_id)  # README and record.py quote these sizes
    decoded = record.decode(KEY, value, keyring)
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
    decoded = record.decode(KEY, record.encode(KEY, tensors, SIGNED), SIGNED)
    for name, array in tensors.items():
        assert decoded[name].dtype == array.dtype and decoded[name].shape == array.shape
        assert np.array_equal(decoded[name], array)


def test_layout_is_documented_little_endian() -> None:
    """Another language can parse and verify it from the docstring alone."""
    values = np.array([0.1, 1.1, 2.1], dtype=np.float32)  # not float16 values: stored as float32 (dtype 1)
    value = record.encode(KEY, {"speaker": values}, SIGNED)
    assert value[:4] == b"VXCR" and value[4] == 3 and value[5] == 0
    assert value[6] == 2 and value[7:9] == b"k1" and value[9] == 1
    assert value[10] == len("speaker") and value[11:18] == b"speaker"
    assert value[18] == 1 and value[19] == 1 and struct.unpack_from("<I", value, 20) == (3,)
    assert np.frombuffer(value[24:36], "<f4").tobytes() == values.tobytes()
    assert len(value) == 36 + 32
    assert value[-32:] == hmac.new(SECRET.encode(), KEY.encode() + value[:-32], hashlib.sha256).digest()
    unsigned = record.encode(KEY, {"speaker": values}, record.UNSIGNED)
    assert unsigned[6] == 0 and unsigned[7] == 1
    assert unsigned[-32:] == hashlib.sha256(KEY.encode() + unsigned[:-32]).digest()


@pytest.mark.parametrize("keyring", [record.UNSIGNED, SIGNED], ids=["unsigned", "signed"])
@pytest.mark.parametrize("position", [0, 5, 7, 20, 400, -1])
def test_any_flipped_byte_is_detected(position: int, keyring: record.Keyring) -> None:
    value = bytearray(record.encode(KEY, {"speaker": ecapa_vector()}, keyring))
    value[position] ^= 0x40
    with pytest.raises(record.RecordError):
        record.decode(KEY, bytes(value), keyring)


def test_truncated_or_garbage_or_misplaced_values_are_rejected() -> None:
    value = record.encode(KEY, {"speaker": ecapa_vector()}, SIGNED)
    for bad in (value[:-10], value[:3], b"", b"\x80\x04pickle" * 10):
        with pytest.raises(record.RecordError):
            record.decode(KEY, bad, SIGNED)
    with pytest.raises(record.RecordError, match="signature mismatch"):
        record.decode(KEY.replace("ab", "cd", 1), value, SIGNED)


def test_version_1_records_are_refused() -> None:
    """What the previous release wrote: recomputed, never parsed (README, upgrading)."""
    value = bytearray(record.encode(KEY, {"speaker": ecapa_vector()}, record.UNSIGNED))
    value[4] = 1
    with pytest.raises(record.RecordError, match="unknown record format"):
        record.decode(KEY, bytes(value), record.UNSIGNED)


def test_a_forged_value_is_rejected() -> None:
    """Well formed, correctly hashed, but not signed by our secret: the attack HMAC stops."""
    genuine = record.encode(KEY, {"speaker": ecapa_vector()}, SIGNED)
    attacker = record.Keyring.parse("k1:not-our-secret-at-all")  # knows the format and the key id
    forged = record.encode(KEY, {"speaker": -ecapa_vector()}, attacker)
    assert forged[:10] == genuine[:10] and len(forged) == len(genuine)
    with pytest.raises(record.RecordError, match="signature mismatch"):
        record.decode(KEY, forged, SIGNED)
    with pytest.raises(record.RecordError, match="unsigned record"):
        record.decode(KEY, record.encode(KEY, {"speaker": ecapa_vector()}, record.UNSIGNED), SIGNED)
    with pytest.raises(record.RecordError, match="key id 'k1'"):
        record.decode(KEY, genuine, record.UNSIGNED)  # a process without the keys cannot vouch for it


def test_rotation_first_key_signs_every_key_verifies() -> None:
    old = record.Keyring.parse(f"k1:{SECRET}")
    rotated = record.Keyring.parse(f"k2:another-secret-0123456789, k1:{SECRET}")
    written_before = record.encode(KEY, {"speaker": ecapa_vector()}, old)
    assert record.decode(KEY, written_before, rotated)["speaker"].tobytes() == ecapa_vector().tobytes()
    written_after = record.encode(KEY, {"speaker": ecapa_vector()}, rotated)
    assert written_after[7:9] == b"k2"
    with pytest.raises(record.RecordError, match="key id 'k2'"):
        record.decode(KEY, written_after, old)  # roll the new list out everywhere before dropping k1


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("k1", "not `id:secret`"),
        (":0123456789abcdef", "not `id:secret`"),
        ("k 1:0123456789abcdef", "not `id:secret`"),
        ("k1:change-me", "shorter than 16 bytes"),
        ("k1:0123456789abcdef,k1:fedcba9876543210", "appears twice"),
    ],
)
def test_malformed_keys_are_refused(spec: str, match: str) -> None:
    with pytest.raises(record.KeyringError, match=match) as caught:
        record.Keyring.parse(spec)
    assert "0123456789abcdef" not in str(caught.value)  # never echo a secret
    assert "change-me" not in str(caught.value)


def test_the_keyring_never_prints_its_secrets() -> None:
    assert SECRET not in repr(SIGNED) and SECRET not in str(SIGNED)


def test_empty_keys_mean_unsigned() -> None:
    assert record.Keyring.parse("") == record.UNSIGNED and record.Keyring.parse(" , ").signing_id == ""


def test_refuses_unsupported_dtype() -> None:
    with pytest.raises(ValueError, match="float64"):
        record.encode(KEY, {"x": np.zeros(3)}, SIGNED)


@pytest.mark.parametrize("keyring", [record.UNSIGNED, SIGNED], ids=["unsigned", "signed"])
def test_float32_values_that_are_exactly_float16_are_stored_in_half_the_bytes(keyring: record.Keyring) -> None:
    rounded = ecapa_vector().astype(np.float16).astype(np.float32)  # what Float16Rounded serves
    value = record.encode(KEY, {"speaker": rounded}, keyring)
    assert len(value) == 438 + len(keyring.signing_id)
    decoded = record.decode(KEY, value, keyring)["speaker"]
    assert decoded.dtype == np.float32 and decoded.tobytes() == rounded.tobytes()
    assert not decoded.flags.writeable
    nearly = rounded.copy()
    nearly[7] = np.nextafter(nearly[7], np.float32(2))  # one value off the float16 grid: no halving
    assert len(record.encode(KEY, {"speaker": nearly}, keyring)) == 822 + len(keyring.signing_id)


def test_version_2_records_are_still_read() -> None:
    """The previous layout is this one without dtype 3: an entry written before the upgrade still hits."""
    value = bytearray(record.encode(KEY, {"speaker": ecapa_vector()}, record.UNSIGNED))
    value[4] = 2
    body = bytes(value[:-32])
    resigned = body + hashlib.sha256(KEY.encode() + body).digest()
    assert record.decode(KEY, resigned, record.UNSIGNED)["speaker"].tobytes() == ecapa_vector().tobytes()
