"""Test-wide settings: Hypothesis profiles (CI runs more examples, never with a deadline)."""

import os

from hypothesis import HealthCheck, settings

# Timing on a shared 2-core CI machine is noise, not a property of the code: no deadlines.
settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
