"""The application's collections and the link fields linkage writes (docs/CONTRACT.md §1).

The one place these names are spelled: the steps, validation, the seed, the
status report and the tests all import them from here.
"""

from __future__ import annotations

USERS = "users"
CUSTOMERS = "customers_v2"
ORDERS = "orders"
DELIVERIES = "delivery_statuses"
APP_COLLECTIONS = (USERS, CUSTOMERS, ORDERS, DELIVERIES)

#: The link fields, by the collection that holds them.
ORDER_LINK = "order_id"  # delivery_statuses -> orders.id
USER_LINK = "customer_v2_id"  # users -> customers_v2.id
CUSTOMER_LINK = "user_id"  # customers_v2 -> users.id
LINK_FIELDS = {DELIVERIES: ORDER_LINK, USERS: USER_LINK, CUSTOMERS: CUSTOMER_LINK}

#: A link value: a non-empty string (type bracketing keeps other types out).
LINK_DOMAIN = {"$gt": ""}
#: The values that count as "unset" besides a missing field.
UNSET_VALUES: list[None | str] = [None, ""]
