"""``/v1/records``: accepted records, newest first, with their verification and their signed bytes.

Pages are cut by keyset: ``next`` is the ``received_at`` of a page's last record, and
``?before=<next>`` asks for the records received before it, so a page stays right while intake
keeps adding records at the top.
"""

import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import AwareDatetime

from carbonlink.chain import record_hash
from carbonlink.envelope import verify
from carbonlink.errors import CarbonlinkError
from carbonlink.wire import format_time
from gateway.api.auth import ReadAccess
from gateway.api.context import ApiContext, Context
from gateway.api.params import DEFAULT_LIMIT, MAX_LIMIT, Limit, parse_digest
from gateway.api.schemas import RecordDetail, RecordOut, RecordPage, Responses, Reverification, Verification, errors
from gateway.model import KeyStatus, RecordQuery, StoredRecord

COSE_MEDIA_TYPE = 'application/cose; cose-type="cose-sign1"'
"""RFC 9052 §9 media type of a COSE_Sign1 message."""

_ONE_MICROSECOND = timedelta(microseconds=1)
"""The resolution of receive times (and of both databases' timestamps)."""

router = APIRouter(prefix="/v1/records", tags=["records"], dependencies=[ReadAccess])

_NOT_FOUND = errors({400: "The hash is not 64 hex digits.", 404: "No accepted record has this hash."})
_RAW: Responses = {status.HTTP_200_OK: {"content": {COSE_MEDIA_TYPE: {}}, "description": "The signed bytes."}}


@router.get("", responses=errors({400: "A device id that is not valid.", 404: "The device is not registered."}))
def list_records(  # noqa: PLR0913 - one argument per query parameter
    *,
    ctx: Context,
    device_id: Annotated[str | None, Query(description="Only this device's records.")] = None,
    record_type: Annotated[Literal["trip", "charge"] | None, Query(alias="type")] = None,
    start_from: Annotated[AwareDatetime | None, Query(alias="from", description="Records ending at or after.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Records starting before.")] = None,
    include_refused: Annotated[
        bool, Query(description="Also chain links refused for their content (refused_for set).")
    ] = False,
    limit: Limit = DEFAULT_LIMIT,
    before: Annotated[AwareDatetime | None, Query(description="The previous page's next.")] = None,
) -> RecordPage:
    """Accepted records, newest (by received_at) first."""
    if device_id is not None:
        device_id = ctx.registry.get(device_id).device_id
    query = RecordQuery(
        include_refused=include_refused,
        device_id=device_id,
        record_type=record_type,
        start_from=start_from,
        until=until,
        limit=limit + 1,  # one more than asked: tells whether a next page exists
        before_received_at=before,
    )
    found = ctx.store.records(query)
    if len(found) <= limit:
        return RecordPage(records=[RecordOut.of(record) for record in found], next=None)
    page = _whole_receive_times(ctx, query, found[:limit], found[limit])
    return RecordPage(records=[RecordOut.of(record) for record in page], next=format_time(page[-1].received_at))


def _whole_receive_times(
    ctx: ApiContext, query: RecordQuery, page: list[StoredRecord], following: StoredRecord
) -> list[StoredRecord]:
    """The page, completed with every record received at its last receive time when the cut split them.

    The cursor is a receive time and the next page starts strictly before it, so records sharing
    the last receive time must all be on this page (two gateway processes can stamp the same
    microsecond): the page then holds a few more than ``limit``.
    """
    last_at = page[-1].received_at
    if following.received_at != last_at:
        return page
    same_time = dataclasses.replace(query, before_received_at=last_at + _ONE_MICROSECOND, limit=MAX_LIMIT)
    tied = [record for record in ctx.store.records(same_time) if record.received_at == last_at]
    return [record for record in page if record.received_at != last_at] + tied


def _stored(ctx: ApiContext, hash_hex: str) -> StoredRecord:
    record = ctx.store.record(parse_digest(hash_hex, "record_hash"))
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no accepted record has hash {hash_hex.lower()}")
    return record


def _verify_again(
    ctx: ApiContext, record: StoredRecord, checked_at: datetime
) -> tuple[Reverification, KeyStatus | None]:
    device = ctx.store.device(record.device_id)
    key = None if device is None else device.key(record.kid)
    if key is None:
        detail = f"no key {record.kid.hex()} is registered for device {record.device_id!r}"
        return Reverification(verified=False, detail=detail, checked_at=checked_at), None
    try:
        verify(record.signed, key.public_key)
    except CarbonlinkError as err:
        return Reverification(verified=False, detail=str(err), checked_at=checked_at), key.status
    if record_hash(record.signed) != record.record_hash:
        detail = "the stored bytes' SHA-256 is not the record hash they are stored under"
        return Reverification(verified=False, detail=detail, checked_at=checked_at), key.status
    detail = f"the signature verifies with key {record.kid.hex()} ({key.status})"
    return Reverification(verified=True, detail=detail, checked_at=checked_at), key.status


@router.get("/{record_hash}", responses=_NOT_FOUND)
def get_record(record_hash: str, ctx: Context) -> RecordDetail:
    """A record's fields, how it was verified on intake, and its signature verified again now."""
    record = _stored(ctx, record_hash)
    again, key_status = _verify_again(ctx, record, ctx.clock())
    previous = record.fields.get("previous_record_hash")
    verification = Verification(
        device_id=record.device_id,
        kid=record.kid.hex(),
        key_status=key_status,
        record_hash=record.record_hash.hex(),
        received_at=record.received_at,
        sequence=record.sequence,
        previous_record_hash=previous if isinstance(previous, str) else None,
        signature_verified_on_intake=True,
        verify_again=again,
    )
    return RecordDetail.of_verified(record, verification)


@router.get(
    "/{record_hash}/raw",
    response_class=Response,
    responses=_NOT_FOUND | _RAW,
)
def get_record_raw(record_hash: str, ctx: Context) -> Response:
    """The exact signed bytes as received (COSE_Sign1): what anyone re-verifies with the device's public key."""
    record = _stored(ctx, record_hash)
    name = record.record_hash.hex()
    return Response(
        content=record.signed,
        media_type=COSE_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.cose"'},
    )
