"""The simulator: EV physics over drive cycles and charging, encoded as CAN traffic with ground truth.

Built in the "Simulator" issue; only the package and its import boundaries exist so far.
"""
