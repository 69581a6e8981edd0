"""``/v1/devices``: the device registry. Anyone with a token reads it; changing it needs an admin token.

Every change goes through :class:`~gateway.registry.DeviceRegistry`, which checks the input
(the same checks as ``carbonlink gateway devices``); its errors become 400, 404 or 409 in
:mod:`gateway.api.app`.
"""

from fastapi import APIRouter, status

from gateway.api.auth import AdminAccess, ReadAccess
from gateway.api.context import Context
from gateway.api.schemas import DeviceCreate, DeviceList, DeviceOut, RevokeRequest, RotateKeyRequest, errors

router = APIRouter(prefix="/v1/devices", tags=["devices"], dependencies=[ReadAccess])

_BAD_INPUT = "Invalid device id, public key, kid, VIN or vehicle class."
_UNKNOWN = "No such device (or key)."


@router.get("")
def list_devices(ctx: Context) -> DeviceList:
    """Every registered device, by device id."""
    return DeviceList(devices=[DeviceOut.of(device) for device in ctx.registry.list()])


@router.get("/{device_id}", responses=errors({400: _BAD_INPUT, 404: _UNKNOWN}))
def get_device(device_id: str, ctx: Context) -> DeviceOut:
    return DeviceOut.of(ctx.registry.get(device_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminAccess],
    responses=errors({400: _BAD_INPUT, 409: "The device id or public key is registered already."}),
)
def add_device(body: DeviceCreate, ctx: Context) -> DeviceOut:
    """Register a device with its first public key (the VIN is hashed; only the hash is stored)."""
    device = ctx.registry.add(body.device_id, body.public_key, vin=body.vin, vehicle_class=body.vehicle_class)
    return DeviceOut.of(device)


@router.post("/{device_id}/revoke", dependencies=[AdminAccess], responses=errors({400: _BAD_INPUT, 404: _UNKNOWN}))
def revoke(device_id: str, ctx: Context, body: RevokeRequest | None = None) -> DeviceOut:
    """Revoke one key (``kid``) or, without a body or kid, the whole device: its records are refused from now on."""
    kid = None if body is None else body.kid
    return DeviceOut.of(ctx.registry.revoke(device_id, kid))


@router.post(
    "/{device_id}/rotate-key",
    dependencies=[AdminAccess],
    responses=errors({400: _BAD_INPUT, 404: _UNKNOWN, 409: "The public key is registered already."}),
)
def rotate_key(device_id: str, body: RotateKeyRequest, ctx: Context) -> DeviceOut:
    """Add a new active key; the active one is retired (still valid for records that ended before now)."""
    return DeviceOut.of(ctx.registry.rotate_key(device_id, body.public_key))
