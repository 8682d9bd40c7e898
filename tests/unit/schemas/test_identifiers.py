"""Identifier normalisation: the same person's id always becomes the same key."""

from __future__ import annotations

import pytest

from schemas.identifiers import (
    IdentifierKind,
    Identifiers,
    InvalidIdentifierError,
    identifier_key,
    normalise,
)

K = IdentifierKind


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (K.EMAIL, "  Hanako.Yamada@Example.JP ", "hanako.yamada@example.jp"),
        (K.EMAIL, "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", "hanako@example.jp"),
        (K.PHONE, "090-1234-5678", "+819012345678"),
        (K.PHONE, "０９０（１２３４）５６７８", "+819012345678"),
        (K.PHONE, "+81 90 1234 5678", "+819012345678"),
        (K.PHONE, "0081-90-1234-5678", "+819012345678"),
        (K.PHONE, "03-1234-5678", "+81312345678"),
        (K.PHONE, "+1 (415) 555-0100", "+14155550100"),
        (K.MALL_CUSTOMER_ID, "Rakuten:abc123", "rakuten:abc123"),
        (
            K.LINE_USER_ID,
            "shop:U4af4980629a0c3c5d3c2ea8d5f1a6b7c",
            "shop:U4af4980629a0c3c5d3c2ea8d5f1a6b7c",
        ),
        (K.POS_CARD, "2900 1234-5678", "290012345678"),
        (K.MEMBER_ID, " M0001 ", "M0001"),
        (K.ANONYMOUS_ID, "a1b2-c3", "a1b2-c3"),
    ],
)
def test_when_an_identifier_is_normalised_then_it_has_one_canonical_form(
    kind: IdentifierKind, raw: str, expected: str
) -> None:
    assert normalise(kind, raw) == expected
    assert normalise(kind, expected) == expected  # idempotent


def test_when_a_line_id_has_no_provider_then_the_configured_one_is_used() -> None:
    value = normalise(K.LINE_USER_ID, "U4af4980629a0c3c5d3c2ea8d5f1a6b7c", line_provider="shop")

    assert value == "shop:U4af4980629a0c3c5d3c2ea8d5f1a6b7c"


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        (K.EMAIL, "not-an-email", "not an email"),
        (K.PHONE, "9012345678", "leading 0"),
        (K.PHONE, "090-12", "not a phone"),
        (K.PHONE, "090-abcd-5678", "not a phone"),
        (K.MALL_CUSTOMER_ID, "abc123", "namespace"),
        (K.LINE_USER_ID, "U4af4980629a0c3c5d3c2ea8d5f1a6b7c", "namespace"),
        (K.LINE_USER_ID, "shop:not-a-line-id", "32 hex"),
        (K.MEMBER_ID, "   ", "empty"),
    ],
)
def test_when_an_identifier_is_malformed_then_the_error_says_why(
    kind: IdentifierKind, raw: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentifierError, match=reason) as caught:
        normalise(kind, raw)

    assert caught.value.kind is kind


def test_when_identifiers_are_listed_then_they_come_in_trust_order() -> None:
    ids = Identifiers(anonymous_id="a1", email="x@example.jp", member_id="M1")

    assert [kind for kind, _ in ids.present()] == [K.MEMBER_ID, K.EMAIL, K.ANONYMOUS_ID]
    assert ids.routing_key() == "member_id:M1"
    assert identifier_key(K.EMAIL, "x@example.jp") == "email:x@example.jp"


def test_when_no_identifier_is_given_then_the_model_refuses() -> None:
    with pytest.raises(ValueError, match="at least one identifier"):
        Identifiers()
