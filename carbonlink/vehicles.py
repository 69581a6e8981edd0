"""Vehicle classes: what the gateway's plausibility bounds and the methodology's baselines key on.

The names are those of the simulator's presets, so a simulated fleet maps one to one. A device
registered without a class is ``unspecified``: the gateway then applies the widest bounds of all
classes, and crediting the most conservative baseline.
"""

from enum import StrEnum


class VehicleClass(StrEnum):
    """The kind of vehicle a device is fitted to."""

    COMPACT = "compact"
    SUV = "suv"
    VAN = "van"
    BUS = "bus"
    UNSPECIFIED = "unspecified"
