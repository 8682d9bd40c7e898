"""LINE webhook events with any content: each is a kizuna event, ignored, or one clear
error for that event; a timestamp beyond year 9999 used to crash the whole webhook (500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode, encode
from schemas.events import RAW_EVENT_ADAPTER
from services.gateway.domain.line_webhook import map_event
from services.gateway.domain.segment_values import MappingError
from tests.hostile import hostile_text, json_values, mutated

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
FOLLOW = {
    "type": "follow",
    "timestamp": 1763634600000,
    "source": {"type": "user", "userId": "U4af4980629"},
    "webhookEventId": "01JFOLLOW",
}
LINK = FOLLOW | {"type": "accountLink", "link": {"result": "ok", "nonce": "n-1"}}


def outcome(raw: Any) -> Any:
    try:
        return map_event(raw, channel_id="U0", provider="shop", received_at=NOW, members={})
    except MappingError as err:
        return err


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        json_values,
        st.sampled_from([FOLLOW, LINK]).flatmap(mutated),
        st.sampled_from([FOLLOW, LINK]).flatmap(lambda e: mutated(e, hostile_text)),
    )
)
def test_when_a_webhook_event_has_any_content_then_it_maps_is_ignored_or_is_a_named_error(
    raw: Any,
) -> None:
    result = outcome(raw)

    if isinstance(result, MappingError):
        assert ": " in str(result)
    elif result is not None:
        assert decode(RAW_EVENT_ADAPTER, encode(result)) == result


@pytest.mark.parametrize("timestamp", [10**15, 253402300800000, 2**63 - 1, 10**20, 1])
def test_when_the_timestamp_is_out_of_range_then_that_event_is_rejected_not_the_webhook(
    timestamp: int,
) -> None:
    result = outcome(FOLLOW | {"timestamp": timestamp})

    assert isinstance(result, MappingError)
    assert str(result).startswith("timestamp: ")
