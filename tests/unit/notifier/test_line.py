"""The LINE retry key: the same notification always carries the same UUID."""

from __future__ import annotations

import uuid

import pytest

from services.notifier.adapters.line import RETRY_KEY_NAMESPACE, retry_key


@pytest.mark.parametrize("notification_id", ["n-1", "j-7:i-42:s-3:line", "日本語", "x" * 300])
def test_when_a_retry_key_is_made_then_it_is_the_uuid5_of_the_notification_id(
    notification_id: str,
) -> None:
    key = retry_key(notification_id)

    assert key == str(uuid.uuid5(RETRY_KEY_NAMESPACE, notification_id))
    assert uuid.UUID(key).version == 5
