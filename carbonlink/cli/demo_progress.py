"""What ``carbonlink demo`` shows while the fleet drives: a live table on a terminal, lines otherwise.

The figures come from the gateway (records it accepted, credits it computed), so what moves on the
screen is the whole chain working, not the simulator alone.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleProgress:
    """One vehicle, as the gateway sees it so far."""

    device_id: str
    vehicle_class: str
    done: bool
    accepted: int
    """Records of this vehicle the gateway accepted so far."""
    credits: int
    co2e_g: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetProgress:
    """Every vehicle at one moment of the run."""

    elapsed_s: float
    vehicles: tuple[VehicleProgress, ...]

    @property
    def done(self) -> int:
        return sum(vehicle.done for vehicle in self.vehicles)


class ProgressView(Protocol):
    """Shows successive :class:`FleetProgress` snapshots; a context manager that cleans the screen up."""

    def show(self, progress: FleetProgress) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class LineProgress:
    """One summary line per snapshot: for logs, pipes and tests."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self._out = out

    def show(self, progress: FleetProgress) -> None:
        accepted = sum(vehicle.accepted for vehicle in progress.vehicles)
        credited = sum(vehicle.credits for vehicle in progress.vehicles)
        self._out(
            f"  [{progress.elapsed_s:5.0f} s] vehicles done {progress.done}/{len(progress.vehicles)}, "
            f"records accepted {accepted}, credits {credited}"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class LiveProgress:
    """A table redrawn in place (rich), one row per vehicle, for a terminal."""

    def __init__(self) -> None:
        from rich.console import Console  # noqa: PLC0415 - only on a terminal
        from rich.live import Live  # noqa: PLC0415

        self._live = Live(console=Console(), refresh_per_second=4, transient=False)

    def show(self, progress: FleetProgress) -> None:
        from rich.table import Table  # noqa: PLC0415 - only on a terminal

        table = Table(
            title=f"{progress.done}/{len(progress.vehicles)} vehicles done, {progress.elapsed_s:.0f} s",
            title_justify="left",
        )
        for column in ("vehicle", "class", "state"):
            table.add_column(column)
        for column in ("records accepted", "credits", "kg CO2e"):
            table.add_column(column, justify="right")
        for vehicle in progress.vehicles:
            table.add_row(
                vehicle.device_id,
                vehicle.vehicle_class,
                "[green]done[/green]" if vehicle.done else "[yellow]driving[/yellow]",
                str(vehicle.accepted),
                str(vehicle.credits),
                f"{vehicle.co2e_g / 1000:.3f}",
            )
        self._live.update(table, refresh=True)

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()
