"""The employee's subscription: plan, SIM cards, active services."""
