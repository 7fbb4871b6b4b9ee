"""The Spreed WebRTC algorithms, checked against values computed here with hmac/hashlib/base64 alone."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from talkd.errors import Forbidden, InvalidInput
from talkd.spreed.tokens import (
    COMBO_LIFETIME,
    SealedBox,
    SessionToken,
    Tickets,
    combo_secret,
    make_combo,
    turn_credentials,
    validate_combo,
)

KEY = b"shared-secret-for-tests"
NOW = 1_700_000_000.0


def stdlib_hmac_b64(key: bytes, message: str, digest: str = "sha256") -> str:
    return base64.b64encode(hmac.new(key, message.encode(), getattr(hashlib, digest)).digest()).decode()


def tickets(nonce_key: bytes | None = None) -> Tickets:
    return Tickets(b"s" * 32, b"e" * 32, "local.public-token", nonce_key)


def test_combo_secret_is_base64_hmac_sha256_of_the_combo() -> None:
    combo = "1900000000:alice@example.org"
    assert combo_secret(KEY, combo) == stdlib_hmac_b64(KEY, combo)
    assert len(combo_secret(KEY, combo)) == 44


def test_registration_combo_expires_after_372_days_and_is_signed() -> None:
    expiry, combo, secret = make_combo(KEY, "u@local", NOW)
    assert expiry == int(NOW) + 372 * 86400 == int(NOW) + COMBO_LIFETIME
    assert combo == f"{expiry}:u@local"
    assert secret == stdlib_hmac_b64(KEY, combo)


def test_valid_combo_yields_its_user_id_and_a_third_field_is_signed_too() -> None:
    combo = "1900000000:bob:Bob Builder"
    assert validate_combo(KEY, combo, stdlib_hmac_b64(KEY, combo), NOW) == "bob"


def test_combo_with_wrong_secret_is_refused() -> None:
    combo = "1900000000:bob"
    with pytest.raises(Forbidden):
        validate_combo(KEY, combo, stdlib_hmac_b64(b"other-secret", combo), NOW)


def test_expired_combo_is_refused_even_with_the_right_secret() -> None:
    combo = f"{int(NOW) - 1}:bob"
    with pytest.raises(Forbidden) as info:
        validate_combo(KEY, combo, stdlib_hmac_b64(KEY, combo), NOW)
    assert info.value.reason == "expired_combo"


@pytest.mark.parametrize("combo", ["no-colon", "soon:bob", ""])
def test_malformed_combo_is_refused(combo: str) -> None:
    with pytest.raises(InvalidInput):
        validate_combo(KEY, combo, stdlib_hmac_b64(KEY, combo), NOW)


@pytest.mark.parametrize("expiry", ["1_900_000_000", " 1900000000", "1900000000 ", "1900000000\n",
                                    "\u0661\u0669\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
                                    str(2**63), "9" * 5000, "+", "0x71"])
def test_a_signed_combo_whose_expiry_is_no_go_int64_is_refused(expiry: str) -> None:
    """The original parses the expiry with strconv.ParseInt(s, 10, 64); Python's int() accepts more."""
    combo = f"{expiry}:bob"
    with pytest.raises(InvalidInput) as info:
        validate_combo(KEY, combo, stdlib_hmac_b64(KEY, combo), NOW)
    assert info.value.reason == "invalid_combo"


@pytest.mark.parametrize("expiry", ["1900000000", "+1900000000", "0" * 30 + "1900000000", str(2**63 - 1)])
def test_a_go_int64_expiry_is_accepted(expiry: str) -> None:
    combo = f"{expiry}:bob"
    assert validate_combo(KEY, combo, stdlib_hmac_b64(KEY, combo), NOW) == "bob"


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    creds = turn_credentials(b"turn-secret", "session-id", NOW, ["turn:t:443"])
    hashed = base64.b64encode(hashlib.sha256(b"session-id").digest()).decode()
    assert creds["username"] == f"{int(NOW) + 3600}:{hashed}"
    assert creds["password"] == stdlib_hmac_b64(b"turn-secret", str(creds["username"]), "sha1")
    assert creds["ttl"] == 3600 and creds["urls"] == ["turn:t:443"]


def test_without_turn_secret_credentials_are_empty() -> None:
    assert turn_credentials(b"", "id", NOW, ["turn:t"]) == {"username": "", "password": "", "ttl": 0, "urls": None}


def test_suserid_is_base64_hmac_sha256_with_the_encryption_secret() -> None:
    assert tickets().suserid("alice") == stdlib_hmac_b64(b"e" * 32, "alice")
    assert tickets().suserid("") == ""


def test_session_id_pairs_with_its_sid_only() -> None:
    t = tickets()
    st = t.new_session()
    assert len(st.sid) == 32 and st.sid.isalnum()
    assert t.validate_session(st.id, st.sid)
    assert st.sid not in st.id
    other = t.new_session()
    assert not t.validate_session(st.id, other.sid)
    assert not Tickets(b"x" * 32, b"e" * 32, "local.public-token").validate_session(st.id, st.sid)


def test_session_token_round_trips_and_hides_the_sid() -> None:
    t = tickets()
    st = t.new_session()
    sealed = t.encode_token(SessionToken(st.id, st.sid, "alice"), NOW)
    assert st.sid.encode() not in base64.urlsafe_b64decode(sealed + "==")
    assert t.decode_token(sealed, NOW + 86400) == SessionToken(st.id, st.sid, "alice")


def test_session_token_expires_after_30_days() -> None:
    t = tickets()
    st = t.new_session()
    sealed = t.encode_token(st, NOW)
    assert t.decode_token(sealed, NOW + 30 * 86400 + 1) is None


def test_tampered_or_foreign_realm_token_is_refused() -> None:
    t = tickets()
    sealed = t.encode_token(t.new_session(), NOW)
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert t.decode_token(flipped, NOW) is None
    assert Tickets(b"s" * 32, b"e" * 32, "local.other-token").decode_token(sealed, NOW) is None
    assert t.decode_token("not a token", NOW) is None


def test_attestation_names_the_session_and_lasts_five_minutes() -> None:
    t = tickets()
    attestation = t.attest("the-id", NOW)
    assert t.verify_attestation(attestation, NOW + 299) == "the-id"
    assert t.verify_attestation(attestation, NOW + 301) is None


def test_an_attestation_is_not_a_session_token() -> None:
    t = tickets()
    assert t.decode_token(t.attest("the-id", NOW), NOW) is None


def test_nonce_is_bound_to_the_sid_and_lasts_60_seconds() -> None:
    t = tickets()
    nonce = t.issue_nonce("sid-a", "alice", NOW)
    assert t.nonce_userid("sid-a", nonce, NOW + 59) == "alice"
    assert t.nonce_userid("sid-b", nonce, NOW) is None
    assert t.nonce_userid("sid-a", nonce, NOW + 61) is None


def test_nonces_die_with_the_process_key() -> None:
    nonce = tickets(b"k" * 64).issue_nonce("sid", "alice", NOW)
    assert tickets(b"k" * 64).nonce_userid("sid", nonce, NOW) == "alice"
    assert tickets().nonce_userid("sid", nonce, NOW) is None


def test_contact_token_round_trips_without_expiry() -> None:
    t = tickets()
    sealed = t.encode_contact("alice", "bob", NOW)
    assert b"alice" not in base64.urlsafe_b64decode(sealed + "==")
    assert t.decode_contact(sealed, NOW + 10 * 365 * 86400) == ("alice", "bob")


def test_sealed_box_refuses_oversized_and_truncated_input() -> None:
    box = SealedBox(b"k" * 32)
    assert box.open("n", "A" * 5000, NOW) is None
    assert box.open("n", box.seal("n", b"x", NOW)[:-3], NOW) is None


def test_two_nonces_for_the_same_session_and_user_differ() -> None:
    t = tickets()
    assert t.issue_nonce("sid", "alice", NOW) != t.issue_nonce("sid", "alice", NOW)
