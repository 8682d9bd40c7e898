"""Segment calls (track / identify / page / screen / alias / group) -> kizuna raw events.

    {"type": "track", "event": "Order Completed", "userId": "M1", "messageId": "m-1",
     "timestamp": "2026-11-20T10:30:00+09:00", "properties": {...}, "context": {...}}
      -> OrderCompleted(event_id="m-1", identifiers={member_id: "M1"}, payload=...)

Identifiers: userId -> member_id, anonymousId -> anonymous_id, context.device.id ->
device_id; identify traits.email / traits.phone -> email / phone; alias previousId ->
anonymous_id next to userId -> member_id. ``messageId`` is the event_id (idempotency
key). ``timestamp`` must carry a time zone (naive is an error); absent, it is the
receive time. ``Location Reported`` (latitude, longitude, accuracy in metres) is the app's
location ping. Unknown track events are kept as ``custom_tracked``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    AppOpened,
    CustomTracked,
    EventEnvelope,
    Identified,
    LocationReported,
    PageViewed,
    RawEvent,
    Source,
)
from services.gateway.domain.segment_commerce import COMMERCE_EVENTS, Mapped
from services.gateway.domain.segment_values import (
    MappingError,
    check_nesting,
    object_at,
    optional_id,
    optional_text,
    required_id,
)

Ids = dict[str, str]
CallMapper = Callable[[dict[str, Any]], tuple[type[EventEnvelope], dict[str, Any], Ids]]

_CONTEXT_RENAMES = {
    "ip": "ip",
    "userAgent": "user_agent",
    "locale": "locale",
    "timezone": "timezone",
}
_CAMPAIGN_KEYS = ("source", "medium", "name", "term", "content")
_PLATFORMS = {"ios": "ios", "iphone os": "ios", "ipados": "ios", "android": "android"}
_GENDERS = {
    **dict.fromkeys(("female", "f", "woman", "女性", "女"), "female"),
    **dict.fromkeys(("male", "m", "man", "男性", "男"), "male"),
    **dict.fromkeys(("other", "non-binary", "その他"), "other"),
    **dict.fromkeys(("unknown", "不明"), "unknown"),
}
_TRAIT_KEYS = {"email", "phone", "name", "firstName", "lastName", "birthday", "gender"}
_TRAIT_KEYS |= {"prefecture", "name_kana", "nameKana"}


def map_message(message: Any, source: Source, received_at: datetime) -> RawEvent:
    """One Segment call as a validated kizuna event, or :class:`MappingError`."""
    if not isinstance(message, dict):
        raise MappingError("(event)", "must be a JSON object")
    check_nesting(message, "(event)")
    kind = message.get("type")
    mapper = _CALLS.get(kind) if isinstance(kind, str) else None
    if mapper is None:
        raise MappingError("type", f"unknown Segment call {kind!r:.40}", reason="unknown_type")
    event_id = required_id(message.get("messageId"), "messageId")
    cls, payload, extra_ids = mapper(message)
    context = object_at(message.get("context"), "context")
    envelope = {
        "event_id": event_id,
        "occurred_at": message.get("timestamp") or received_at,
        "received_at": received_at,
        "source": source,
        "identifiers": identifiers(message, context, extra_ids),
        "context": event_context(context),
        "payload": payload,
    }
    try:
        return cls.model_validate(envelope)  # type: ignore[return-value]
    except ValidationError as err:
        raise MappingError.from_validation(err) from None


def identifiers(message: dict[str, Any], context: dict[str, Any], extra: Ids) -> Ids:
    found: Ids = {}
    for kind, value in (
        ("member_id", optional_id(message.get("userId"), "userId")),
        ("anonymous_id", optional_id(message.get("anonymousId"), "anonymousId")),
        (
            "device_id",
            optional_id(
                object_at(context.get("device"), "context.device").get("id"), "context.device.id"
            ),
        ),
    ):
        if value is not None:
            found[kind] = value
    found.update(extra)
    if not found:
        raise MappingError("userId", "userId or anonymousId is required")
    return found


def event_context(context: dict[str, Any]) -> dict[str, Any]:
    """Segment's context in kizuna names; keys kizuna has no field for are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in context.items():
        if key in _CONTEXT_RENAMES:
            out[_CONTEXT_RENAMES[key]] = value
        elif key == "page":
            url = object_at(value, "context.page").get("url")
            if url is not None:
                out["page_url"] = url
        elif key == "campaign":
            campaign = object_at(value, "context.campaign")
            out["campaign"] = {k: campaign[k] for k in _CAMPAIGN_KEYS if k in campaign}
        elif key == "app":
            version = object_at(value, "context.app").get("version")
            if version is not None:
                out["app_version"] = str(version)
        else:
            out[key] = value
    return out


def _track(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    name = optional_text(message.get("event"), "event")
    if name is None:
        raise MappingError("event", "is required for a track call")
    properties = object_at(message.get("properties"), "properties")
    normalised = name.strip().lower().replace("_", " ")
    if normalised == "application opened":
        cls, payload = _app_opened(message, name, properties)
    elif normalised == "location reported":
        cls, payload = _location(message, properties)
    elif normalised in COMMERCE_EVENTS:
        cls, payload = COMMERCE_EVENTS[normalised](properties)
    else:
        cls, payload = custom(name, properties)
    return cls, payload, {}


def custom(name: str, properties: dict[str, Any]) -> Mapped:
    return CustomTracked, {"name": name, "properties": properties}


def _app_opened(message: dict[str, Any], name: str, properties: dict[str, Any]) -> Mapped:
    """Segment's mobile spec; without a recognisable platform it stays a custom event."""
    context = object_at(message.get("context"), "context")
    os_name = object_at(context.get("os"), "context.os").get("name")
    platform = _PLATFORMS.get(os_name.lower()) if isinstance(os_name, str) else None
    if platform is None:
        return custom(name, properties)
    payload: dict[str, Any] = {"platform": platform}
    token = object_at(context.get("device"), "context.device").get("token")
    if token is not None:
        payload["push_token"] = token
    return AppOpened, payload


def _location(message: dict[str, Any], properties: dict[str, Any]) -> Mapped:
    """The app's location ping: ``properties.latitude/longitude/accuracy`` (metres), or
    the SDK's ``context.location`` where the properties leave them out."""
    context = object_at(message.get("context"), "context")
    location = object_at(context.get("location"), "context.location")
    payload: dict[str, Any] = {}
    for field, names in (
        ("latitude", ("latitude", "lat")),
        ("longitude", ("longitude", "lon", "lng")),
        ("accuracy_m", ("accuracy", "accuracy_m", "horizontal_accuracy")),
    ):
        found = next(
            (source[n] for source in (properties, location) for n in names if n in source), None
        )
        if found is None:
            raise MappingError(f"properties.{names[0]}", "is required for Location Reported")
        payload[field] = found
    return LocationReported, payload


def _page(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    properties = object_at(message.get("properties"), "properties")
    page = object_at(object_at(message.get("context"), "context").get("page"), "context.page")
    payload: dict[str, Any] = {}
    for key in ("url", "path", "title", "referrer"):
        value = properties.get(key) if properties.get(key) is not None else page.get(key)
        if value is not None:
            payload[key] = value
    if "title" not in payload and message.get("name") is not None:
        payload["title"] = message["name"]
    if "url" not in payload:
        raise MappingError("properties.url", "is required (or context.page.url)")
    return PageViewed, payload, {}


def _screen(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    """A mobile screen view has no URL: kept as the custom event 'Screen Viewed'."""
    properties = dict(object_at(message.get("properties"), "properties"))
    for key in ("name", "category"):
        if message.get(key) is not None:
            properties.setdefault(key, message[key])
    cls, payload = custom("Screen Viewed", properties)
    return cls, payload, {}


def _group(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    group_id = required_id(message.get("groupId"), "groupId")
    traits = object_at(message.get("traits"), "traits")
    cls, payload = custom("Group", {"group_id": group_id, "traits": traits})
    return cls, payload, {}


def _alias(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    previous = required_id(message.get("previousId"), "previousId")
    user = required_id(message.get("userId"), "userId")
    return Identified, {}, {"member_id": user, "anonymous_id": previous}


def _identify(message: dict[str, Any]) -> tuple[type[EventEnvelope], dict[str, Any], Ids]:
    raw = object_at(message.get("traits"), "traits")
    extra: Ids = {}
    for kind in ("email", "phone"):
        value = optional_id(raw.get(kind), f"traits.{kind}")
        if value is not None:
            extra[kind] = value
    return Identified, {"traits": traits(raw)}, extra


def traits(raw: dict[str, Any]) -> dict[str, Any]:
    """Known traits into kizuna fields; everything else (address, plan, …) into ``custom``."""
    out: dict[str, Any] = {"custom": {k: v for k, v in raw.items() if k not in _TRAIT_KEYS}}
    name = raw.get("name") or " ".join(
        part for part in (raw.get("lastName"), raw.get("firstName")) if isinstance(part, str)
    )
    if name:
        out["name"] = name
    kana = raw.get("name_kana") or raw.get("nameKana")
    if kana:
        out["name_kana"] = kana
    birthday = raw.get("birthday")
    if isinstance(birthday, str) and len(birthday) > 10 and birthday[10] == "T":
        birthday = birthday[:10]  # an ISO timestamp: the date part is the birthday
    if birthday:
        out["birthday"] = birthday
    gender = raw.get("gender")
    if gender is not None:
        known = _GENDERS.get(str(gender).strip().lower())
        out["gender" if known else "custom"] = known or {**out["custom"], "gender": gender}
    address = raw.get("address")
    prefecture = raw.get("prefecture") or (
        address.get("state") if isinstance(address, dict) else None
    )
    if prefecture:
        out["prefecture"] = prefecture
    return out


_CALLS: dict[str, CallMapper] = {
    "track": _track,
    "identify": _identify,
    "page": _page,
    "screen": _screen,
    "alias": _alias,
    "group": _group,
}

SEGMENT_CALLS = tuple(_CALLS)
