"""Live state, attempt limits, alerts and leader leases: one contract, in-process and Redis."""
