"""``/v1/owners`` and ``/v1/vehicles/{vehicle_key}/binding``: who credits are issued to, and with what consent.

A vehicle's credits accrue until an operator records its owner's consent here; the binding is a
ledger entry, and binding issues every credit the vehicle accrued (later ones are issued as they
come). Binding goes through the gateway's :class:`~gateway.crediting.service.Crediting`, so it is
refused (409) on a gateway that runs without crediting. Reading needs a token, changing an admin one.
"""

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from gateway.api.auth import AdminAccess, ReadAccess
from gateway.api.context import Context
from gateway.api.credit_schemas import BindingCreate, BindingOut, OwnerCreate, OwnerList, OwnerOut
from gateway.api.schemas import errors
from gateway.errors import RegistryError

router = APIRouter(tags=["owners"], dependencies=[ReadAccess])

_OWNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
"""The spelling of device ids (``carbonlink.keys.check_device_id``): safe in paths, logs and exports."""

_BAD_OWNER = "An owner id that is not valid."
_UNKNOWN_OWNER = "No such owner."

VehicleKey = Annotated[str, Path(description="vin:<hex VIN hash> or, for a vehicle without VIN, device:<device id>.")]


def parse_owner_id(owner_id: str) -> str:
    """The owner id if it is spelt like a device id, else :class:`RegistryError` saying what one is."""
    if _OWNER_ID.fullmatch(owner_id) is None:
        raise RegistryError(
            f"owner id {owner_id!r} must be 3-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
        )
    return owner_id


def _printable(text: str, what: str) -> str:
    if not text.strip() or not text.isprintable():
        raise RegistryError(f"{what} must be printable characters, not only spaces")
    return text


@router.get("/v1/owners")
def list_owners(ctx: Context) -> OwnerList:
    """Every owner account, by owner id."""
    return OwnerList(owners=[OwnerOut.of(owner) for owner in ctx.store.ledger.owners()])


@router.get("/v1/owners/{owner_id}", responses=errors({400: _BAD_OWNER, 404: _UNKNOWN_OWNER}))
def get_owner(owner_id: str, ctx: Context) -> OwnerOut:
    owner = ctx.store.ledger.owner(parse_owner_id(owner_id))
    if owner is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no owner {owner_id!r}")
    return OwnerOut.of(owner)


@router.post(
    "/v1/owners",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminAccess],
    responses=errors({400: "An owner id or name that is not valid.", 409: "The owner id is taken."}),
)
def add_owner(body: OwnerCreate, ctx: Context) -> OwnerOut:
    """Open an owner account; vehicles are then bound to it with the owner's consent."""
    owner_id = parse_owner_id(body.owner_id)
    name = _printable(body.name, "an owner's name")
    try:
        owner = ctx.store.ledger.add_owner(owner_id, name, at=ctx.clock())
    except RegistryError as err:  # the store's one refusal: the id is taken
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(err)) from err
    return OwnerOut.of(owner)


@router.post(
    "/v1/vehicles/{vehicle_key}/binding",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminAccess],
    responses=errors(
        {
            400: "A vehicle key, owner id or consent method that is not valid, or consent in the future.",
            404: _UNKNOWN_OWNER,
            409: "Crediting is off on this gateway.",
        }
    ),
)
def bind_vehicle(vehicle_key: VehicleKey, body: BindingCreate, ctx: Context) -> BindingOut:
    """Bind the vehicle to an owner under their consent; its accrued credits are issued to them at once.

    Binding a vehicle again (to another owner, or with a newer consent) records a new binding entry;
    credits issued under the old one stay issued.
    """
    if ctx.crediting is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="crediting is off on this gateway ([crediting] enabled = false): nothing can be issued",
        )
    owner_id = parse_owner_id(body.owner_id)
    if ctx.store.ledger.owner(owner_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no owner {owner_id!r}: add the owner first")
    binding, issued = ctx.crediting.bind(
        vehicle_key,
        owner_id,
        consented_at=body.consented_at,
        consent_method=_printable(body.consent_method, "the consent method"),
        consent_reference=body.consent_reference,
    )
    return BindingOut.of(binding, issued)
