"""Replay of recorded CAN logs through the agent's own pipeline (carbonlink replay)."""
