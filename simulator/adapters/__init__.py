"""The simulator's edge: writing frames to python-can buses and log files, ground truth to JSON."""
