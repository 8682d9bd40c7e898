"""The identity graph held in a dict: for tests, for rebuilds and as the reference the
Redis view must equal."""

from __future__ import annotations

from services.identity.domain.diff import Resolution
from services.identity.domain.graph import NeedMore, resolve
from services.identity.domain.model import Customer
from services.identity.domain.rules import Observation, Rules


class InMemoryGraph:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.index: dict[str, tuple[str, int]] = {}  # node key -> (customer id, first seen)
        self.customers: dict[str, Customer] = {}

    def apply(self, obs: Observation) -> Resolution:
        owners = {key: owner for key, (owner, _) in self.index.items()}
        result = resolve(obs, owners, self.customers, self.rules)
        if isinstance(result, NeedMore):  # pragma: no cover - everything is loaded here
            raise AssertionError(f"in-memory graph missing {sorted(result.node_keys)}")
        self.commit(result)
        return result

    def commit(self, result: Resolution) -> None:
        for cid in result.removed:
            del self.customers[cid]
        for customer in result.upserts:
            self.customers[customer.customer_id] = customer
        self.index.update(result.index)

    def load(self, customers: list[Customer]) -> None:
        self.customers = {c.customer_id: c for c in customers}
        self.index = {
            key: (c.customer_id, node.first_seen)
            for c in customers
            for key, node in c.nodes.items()
        }

    def partition(self) -> dict[str, frozenset[str]]:
        """Customer id -> its identifiers: what two equal graphs must agree on."""
        return {cid: frozenset(c.nodes) for cid, c in self.customers.items()}
