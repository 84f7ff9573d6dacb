"""Migration 003: link `users.customer_v2_id` and `customers_v2.user_id` (CONTRACT §3).

Phones and emails are stored in many shapes, so the raw `{phone: 1}` index cannot
find a user's candidates safely (a missed shape could hide a second candidate and
turn an ambiguous user into a wrong link). The step therefore links in phases
through normalised keys (`link`). A reconciliation first repairs the one-sided
pairs in the data, whatever wrote them, one pass per side (`repair`), then links
what is still unlinked. Its rules (each link names an existing document, no two
documents share one, both sides agree, and the coverage of customer accounts)
are measured by one walk per side (`checks`).
"""

from __future__ import annotations

from linkage.core.app_schema import CUSTOMER_LINK, CUSTOMERS, USER_LINK, USERS
from linkage.core.comparing import Comparator
from linkage.core.models import RunKind
from linkage.mongo.indexes import IndexSpec
from linkage.relations.base import Phase, StepSpec
from linkage.relations.checks import Check
from linkage.relations.user_customer.checks import pair_findings
from linkage.relations.user_customer.link import KEYS, LINK_PHASES, PLAN, USER_OID
from linkage.relations.user_customer.matching import CUSTOMER_FIELDS, compare_customer, user_facts
from linkage.relations.user_customer.repair import REPAIR_PHASES
from linkage.relations.user_customer.review import SUBJECTS
from linkage.relations.user_customer.sides import (
    CUSTOMER_LINK_DUPLICATES,
    CUSTOMER_REFS_DANGLING,
    CUSTOMER_USERS,
    LINKS_DISAGREE,
    RULES,
    STEP,
    USER_CUSTOMERS,
    USER_LINK_DUPLICATES,
    USER_REFS_DANGLING,
)
from linkage.relations.user_customer.wanted import WANTED, wanted_pass


def _by_id_phone_email(collection: str) -> tuple[IndexSpec, ...]:
    # `id` is beyond §4: joins by id (reconciliation, validation)
    return tuple(IndexSpec(collection=collection, keys=[(field, 1)]) for field in ("phone", "email", "id"))


class UserCustomer(StepSpec):
    id = STEP
    label = "003: users <-> customer profiles"
    reads = (USERS, CUSTOMERS)
    writes = (USERS, CUSTOMERS)
    indexes = (IndexSpec(collection=USERS, keys=[(USER_LINK, 1)], unique_link=True), *_by_id_phone_email(USERS),
               IndexSpec(collection=CUSTOMERS, keys=[(CUSTOMER_LINK, 1)], unique_link=True),
               *_by_id_phone_email(CUSTOMERS))
    scratch = {KEYS: [[(field, 1)] for field in ("phone", "email", "id", "user_id", "run_id")],
               PLAN: [[("run_id", 1), ("customer_id", 1), (USER_OID, 1)]], WANTED: [[("run_id", 1), ("value", 1)]]}
    rules = RULES
    checks = (Check("user_customer_links", walk=pair_findings, counts=(USER_CUSTOMERS, CUSTOMER_USERS),
                    measures=(USER_REFS_DANGLING, CUSTOMER_REFS_DANGLING, USER_LINK_DUPLICATES,
                              CUSTOMER_LINK_DUPLICATES, LINKS_DISAGREE)),)
    relations = (USER_CUSTOMERS, CUSTOMER_USERS)
    subjects = SUBJECTS
    comparators = (Comparator(collection=USERS, target=CUSTOMERS, fields=CUSTOMER_FIELDS, facts=user_facts,
                              compare=compare_customer),)

    def phases(self, kind: RunKind) -> list[Phase]:
        return LINK_PHASES if kind == RunKind.MIGRATE else [*REPAIR_PHASES, Phase("wanted", wanted_pass), *LINK_PHASES]


SPEC = UserCustomer()
