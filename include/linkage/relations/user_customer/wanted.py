"""What a reconcile's accounts could match: the `wanted` phase, so its keys follow the drift.

A night's unlinked accounts are few, and normalising every customer into the
keys each night would make the night cost the database, not the drift. So a
reconcile first notes, for every account it considers, its normalised phone and
email, its id (for a customer that names it) and the account itself. The keys
phase then keeps only the customers matching a wanted key, and the plan phase
classifies only the noted accounts: one the app created after this phase waits
for the next night, since its candidates may not all be among the keys (a
missing candidate would make an ambiguous account look linkable).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ReplaceOne

from linkage.core.app_schema import UNSET_VALUES, USER_LINK, USERS
from linkage.core.keys import id_key
from linkage.core.normalize import is_key, normalize_email, normalize_phone
from linkage.engine.passes import BatchPlan, Pass
from linkage.mongo import bulk
from linkage.relations.base import StepContext
from linkage.relations.user_customer.matching import CustomerKey, is_considered
from linkage.relations.user_customer.sides import STEP

WANTED = "wanted_keys"
UNLINKED_ACCOUNTS = {"role": "customer", USER_LINK: {"$in": UNSET_VALUES}}


def account_marker(user: dict[str, Any]) -> str:
    return f"account:{id_key(user['_id'])}"


def account_keys(user: dict[str, Any]) -> list[str]:
    phone, email = normalize_phone(user.get("phone")), normalize_email(user.get("email"))
    named = user.get("id") if is_key(user.get("id")) else None
    return [f"{kind}:{value}" for kind, value in (("phone", phone), ("email", email), ("id", named)) if value]


def customer_keys(key: CustomerKey) -> list[str]:
    named = key.user_id if is_key(key.user_id) else None
    return [f"{kind}:{value}" for kind, value in (("phone", key.phone), ("email", key.email), ("id", named)) if value]


class Wanted:
    """The run's wanted keys and noted accounts (a scratch collection)."""

    def __init__(self, ctx: StepContext) -> None:
        self.coll, self.run_id, self.chunk = ctx.bookkeeping(WANTED), ctx.run_id, ctx.write_chunk

    def among(self, values: Iterable[str]) -> set[str]:
        """Which of these keys (or account markers) are wanted."""
        wanted = sorted(set(values))
        if not wanted:
            return set()
        return {d["value"] for d in self.coll.find({"run_id": self.run_id, "value": {"$in": wanted}}, {"value": 1})}

    def note(self, batch: list[dict[str, Any]]) -> BatchPlan:
        considered = [u for u in batch if is_considered(u)]
        values = {value for u in considered for value in (account_marker(u), *account_keys(u))}
        if values:
            bulk.write(self.coll, [ReplaceOne({"_id": f"{self.run_id}:{v}"},
                                              {"_id": f"{self.run_id}:{v}", "run_id": self.run_id, "value": v},
                                              upsert=True) for v in sorted(values)], self.chunk)
        return BatchPlan(decisions=[], extra={"accounts_noted": len(considered)})


def wanted_pass(ctx: StepContext) -> Pass:
    return Pass(step=STEP, phase="wanted", source=ctx.db[USERS], query=dict(UNLINKED_ACCOUNTS),
                projection={"id": 1, "role": 1, "phone": 1, "email": 1, USER_LINK: 1}, plan=Wanted(ctx).note,
                subject=USERS)
