"""Adapters to the outside systems the order-worker talks to, each behind a narrow interface."""
