"""Orders: placing them, and following their status as the workers report it."""
