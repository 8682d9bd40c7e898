"""The shop's customers: who they are and which identifiers each one leaves behind.

A person may be a member (member id, email, phone), carry a point card used at the
registers, buy on malls under a mall customer id, follow the LINE account, and browse
from several cookies (web) and devices (app). Seeded: the same seed, the same people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulator.catalog import FAMILY_NAMES, GIVEN_NAMES, MALLS, PREFECTURES, STORES


@dataclass
class Device:
    device_id: str
    platform: str  # "ios" | "android"
    push_token: str


@dataclass
class Person:
    index: int
    member_id: str | None
    email: str
    phone: str
    name: str
    gender: str
    birthday: str
    prefecture: str
    home_store: str
    pos_card: str | None
    mall_ids: dict[str, str]
    line_user_id: str | None
    cookies: list[str]
    devices: list[Device]
    activity: float
    line_following: bool = False
    line_linked: bool = False
    consents: dict[str, bool] = field(default_factory=dict)


def token(rng: random.Random, size: int) -> str:
    return f"{rng.getrandbits(size * 4):0{size}x}"


def person(rng: random.Random, index: int) -> Person:
    member = rng.random() < 0.6
    family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
    malls = [m for m in MALLS if rng.random() < 0.15]
    return Person(
        index=index,
        member_id=f"M{100000 + index}" if member else None,
        email=f"user{index}.{token(rng, 4)}@example.jp",
        phone=f"090{rng.randrange(10_000_000, 99_999_999)}",
        name=f"{family} {given}",
        gender=rng.choice(("female", "female", "male", "male", "other")),
        birthday=_birthday(rng),
        prefecture=rng.choice(PREFECTURES),
        home_store=rng.choice(STORES).store_id,
        pos_card=f"2{rng.randrange(10**11, 10**12)}" if member and rng.random() < 0.6 else None,
        mall_ids={m: f"{m}:{token(rng, 10)}" for m in malls},
        line_user_id=f"U{token(rng, 32)}" if rng.random() < 0.5 else None,
        cookies=[f"anon-{token(rng, 16)}" for _ in range(rng.choice((1, 1, 2, 3)))],
        devices=_devices(rng),
        activity=rng.paretovariate(1.5),
    )


def _birthday(rng: random.Random) -> str:
    return f"{rng.randrange(1955, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def _devices(rng: random.Random) -> list[Device]:
    count = rng.choice((0, 0, 0, 1, 1, 2))
    return [
        Device(f"dev-{token(rng, 16)}", rng.choice(("ios", "android")), f"tok-{token(rng, 32)}")
        for _ in range(count)
    ]


def population(rng: random.Random, size: int) -> list[Person]:
    return [person(rng, index) for index in range(size)]
