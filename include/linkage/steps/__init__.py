"""The two migrations as passes of the engine (002 order-delivery, 003 user-customer)."""
