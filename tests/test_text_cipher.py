"""Free text at rest: the export's batch decryption gives exactly what Fernet gives.

``TextCipher.decrypt_many`` does Fernet's checks itself (see its docstring) so that an export
of a million answers does not build an HMAC and a cipher per answer. These tests hold it to
``cryptography``'s own Fernet, token by token, for good tokens and bad ones side by side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.crypto import TextCipher, _key_for

NEW, OLD = "the-new-study-secret-0123456789", "the-old-study-secret-9876543210"


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key_for(secret)))


def _reference(secrets: list[str], token: str) -> str | None:
    """What cryptography's Fernet makes of ``token`` with any of ``secrets``, else None."""
    for secret in secrets:
        try:
            return _fernet(secret).decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError, ValueError):
            continue
    return None


def _signed(secret: str, padded_plain: bytes) -> str:
    """A token with a true HMAC around ``padded_plain`` encrypted as given (no padding added)."""
    key = _key_for(secret)
    iv = bytes(range(16))
    encryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
    body = b"\x80" + (0).to_bytes(8, "big") + iv + encryptor.update(padded_plain)
    body += encryptor.finalize()
    mac = hmac.new(key[:16], body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).decode("ascii")


def _flip(token: str, at: int) -> str:
    data = bytearray(base64.urlsafe_b64decode(token))
    data[at] ^= 0x01
    return base64.urlsafe_b64encode(bytes(data)).decode("ascii")


WORDS = [
    "",
    "ok",
    "exactly sixteen!",  # one whole block: padding adds a block of its own
    "fifteen chars..",
    "seventeen chars..",
    "Ça m'a aidé 💛 — more confident now",
    "a longer reflection, " * 40,
]


def test_a_batch_reads_like_fernet_under_both_keys_in_order() -> None:
    cipher = TextCipher(f"{NEW},{OLD}")
    new, old = TextCipher(NEW), TextCipher(OLD)
    tokens = [(new if n % 2 else old).encrypt(words)[0] for n, words in enumerate(WORDS * 3)]
    assert cipher.decrypt_many(tokens) == WORDS * 3
    assert cipher.decrypt_many(tokens) == [cipher.decrypt(t, True) for t in tokens]


def test_bad_tokens_are_none_and_leave_their_neighbours_alone() -> None:
    cipher = TextCipher(f"{NEW},{OLD}")
    good = TextCipher(NEW).encrypt("my own words")[0]
    length = len(base64.urlsafe_b64decode(good))
    bad = {
        "foreign key": TextCipher("somebody-else's-secret-key-000").encrypt("theirs")[0],
        "ciphertext changed": _flip(good, 30),
        "iv changed": _flip(good, 12),
        "hmac changed": _flip(good, length - 1),
        "version changed": _flip(good, 0),
        "cut short": good[:-8],
        "not base64": "this is not a token!",
        "empty": "",
        "one block missing": base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(good)[: 9 + 16] + base64.urlsafe_b64decode(good)[-32:]
        ).decode("ascii"),
        "bad padding, true hmac": _signed(NEW, b"sixteen bytes!!\x00"),
        "padding too long, true hmac": _signed(NEW, b"fifteen bytes!!\x11"),
        "not utf-8, true hmac": _signed(NEW, b"\xff\xfe" + bytes([14]) * 14),
    }
    tokens = [good]
    for token in bad.values():
        tokens += [token, good]
    opened = cipher.decrypt_many(tokens)
    assert opened == [_reference([NEW, OLD], t) for t in tokens]
    assert opened[0::2] == ["my own words"] * (len(bad) + 1)
    assert dict(zip(bad, opened[1::2], strict=True)) == dict.fromkeys(bad)


def test_a_padding_of_a_whole_block_with_a_true_hmac_reads() -> None:
    """The hand-made tokens above are Fernet's own layout: a right one opens."""
    token = _signed(NEW, b"fifteen bytes!!\x01")
    assert TextCipher(NEW).decrypt_many([token]) == ["fifteen bytes!!"]
    assert _reference([NEW], token) == "fifteen bytes!!"


def test_without_a_key_nothing_is_read() -> None:
    token = TextCipher(NEW).encrypt("words")[0]
    assert TextCipher(None).decrypt_many([token, token]) == [None, None]
    with pytest.raises(ValueError):
        TextCipher(None).decrypt(token, True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=300), st.booleans()), max_size=30))
def test_any_texts_under_either_key_come_back(texts: list[tuple[str, bool]]) -> None:
    new, old, both = TextCipher(NEW), TextCipher(OLD), TextCipher(f"{NEW},{OLD}")
    tokens = [(old if older else new).encrypt(words)[0] for words, older in texts]
    assert both.decrypt_many(tokens) == [words for words, _ in texts]
