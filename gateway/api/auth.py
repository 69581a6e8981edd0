"""Bearer-token access to the API: read tokens may read, admin tokens may also change the registry.

A request's token is compared with *every* configured token by :func:`hmac.compare_digest`, with no
early exit, so the time taken does not tell an attacker how much of a token was right nor which
token matched. A missing or unknown token gets 401 with ``WWW-Authenticate: Bearer`` (RFC 6750);
a read token on an admin endpoint gets 403.
"""

import hmac
from enum import IntEnum
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.context import Context
from gateway.api.settings import ApiSettings

REALM = "carbonlink-gateway"

bearer_scheme = HTTPBearer(
    auto_error=False,  # a missing token is answered here, with the WWW-Authenticate header RFC 6750 asks for
    description=(
        "A read or admin token: the content of a file named by [api] read_token_files or admin_token_files "
        "in gateway.toml."
    ),
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


class Access(IntEnum):
    """What a token may do; a higher level includes the lower ones."""

    READ = 1
    ADMIN = 2


def _any_matches(presented: bytes, tokens: frozenset[str]) -> bool:
    matched = False
    for token in tokens:
        # '|=' and not 'or': every token is compared, whichever matches.
        matched |= hmac.compare_digest(presented, token.encode("utf-8"))
    return matched


def access_of(settings: ApiSettings, token: str) -> Access | None:
    """What ``token`` may do, or None when it is no token of this gateway."""
    presented = token.encode("utf-8")
    is_admin = _any_matches(presented, settings.admin_tokens)
    is_reader = _any_matches(presented, settings.read_tokens)
    if is_admin:
        return Access.ADMIN
    return Access.READ if is_reader else None


def _unauthorized(detail: str, error: str | None) -> HTTPException:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def _authorize(ctx: Context, credentials: HTTPAuthorizationCredentials | None, needed: Access) -> Access:
    if credentials is None:
        raise _unauthorized("missing token: send the header 'Authorization: Bearer <token>'", None)
    access = access_of(ctx.settings, credentials.credentials)
    if access is None:
        raise _unauthorized("invalid token", "invalid_token")
    if access < needed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this endpoint needs an admin token")
    return access


def require_read(ctx: Context, credentials: Credentials) -> Access:
    """A dependency: the request carries a read or admin token."""
    return _authorize(ctx, credentials, Access.READ)


def require_admin(ctx: Context, credentials: Credentials) -> Access:
    """A dependency: the request carries an admin token."""
    return _authorize(ctx, credentials, Access.ADMIN)


ReadAccess = Depends(require_read)
AdminAccess = Depends(require_admin)
