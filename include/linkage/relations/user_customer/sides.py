"""The user-customer relation's vocabulary: its two sides, the relations it is covered by, its rules.

A pair is two link fields naming each other by `id`: `users.customer_v2_id`
and `customers_v2.user_id`. Everything that walks one side (the nightly repair,
the validation checks) is written once for a `Side` and used for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkage.core.app_schema import CUSTOMER_LINK, CUSTOMERS, USER_LINK, USERS
from linkage.engine.coverage import Relation
from linkage.relations.rules import Rule, RuleKind, Threshold

STEP = "user_customer"

USER_CUSTOMERS = Relation(collection=USERS, field=USER_LINK, scope={"role": "customer"},
                          counts="customer accounts (users with role customer)")
CUSTOMER_USERS = Relation(collection=CUSTOMERS, field=CUSTOMER_LINK, counts="customer profiles")

USER_REFS_DANGLING = Rule(name="user_refs_dangling", step=STEP, kind=RuleKind.INTEGRITY,
                          description="every set users.customer_v2_id names an existing customer")
CUSTOMER_REFS_DANGLING = Rule(name="customer_refs_dangling", step=STEP, kind=RuleKind.INTEGRITY,
                              description="every set customers_v2.user_id names an existing user")
USER_LINK_DUPLICATES = Rule(name="user_link_duplicates", step=STEP, kind=RuleKind.INTEGRITY,
                            description="no two users share a customer_v2_id")
CUSTOMER_LINK_DUPLICATES = Rule(name="customer_link_duplicates", step=STEP, kind=RuleKind.INTEGRITY,
                                description="no two customers share a user_id")
LINKS_DISAGREE = Rule(name="links_disagree", step=STEP, kind=RuleKind.INTEGRITY,
                      description="both sides of each user-customer link name each other")
USER_COVERAGE = Rule(
    name="user_coverage", step=STEP, kind=RuleKind.COVERAGE, relation=USER_CUSTOMERS,
    description="share of customer accounts linked to a customer profile",
    threshold=Threshold(parameter="min_user_coverage", title="Minimum user-link coverage",
                        description="Share of customer accounts that must carry a customer_v2_id after the run."))
RULES = (USER_REFS_DANGLING, CUSTOMER_REFS_DANGLING, USER_LINK_DUPLICATES, CUSTOMER_LINK_DUPLICATES, LINKS_DISAGREE,
         USER_COVERAGE)


@dataclass(frozen=True)
class Side:
    """`source` documents whose `field` names a `target` document by `id`, whose `back` field should name
    them in return; with the relation that side's links count for and its own rules."""

    source: str
    field: str
    target: str
    back: str
    relation: Relation
    duplicates: Rule
    dangling: Rule


USER_SIDE = Side(source=USERS, field=USER_LINK, target=CUSTOMERS, back=CUSTOMER_LINK, relation=USER_CUSTOMERS,
                 duplicates=USER_LINK_DUPLICATES, dangling=USER_REFS_DANGLING)
CUSTOMER_SIDE = Side(source=CUSTOMERS, field=CUSTOMER_LINK, target=USERS, back=USER_LINK, relation=CUSTOMER_USERS,
                     duplicates=CUSTOMER_LINK_DUPLICATES, dangling=CUSTOMER_REFS_DANGLING)
SIDES = (USER_SIDE, CUSTOMER_SIDE)
