"""EV physics, pure and deterministic: longitudinal dynamics, the battery and the charger."""
