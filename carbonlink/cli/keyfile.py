"""Device key files on disk: written with mode 0600 and never overwritten by accident."""

import os
import secrets
import sys
from pathlib import Path

from carbonlink.cli.errors import CliError
from carbonlink.errors import KeyFormatError
from carbonlink.keys import (
    KEY_FILE_FORMAT,
    SEED_BYTES,
    DeviceKey,
    PublicKey,
    key_file_permission_problem,
    parse_key_file,
    render_key_file,
)


def new_device_key(device_id: str | None) -> DeviceKey:
    """A fresh key from the operating system's random source."""
    try:
        return DeviceKey.from_seed(secrets.token_bytes(SEED_BYTES), device_id)
    except KeyFormatError as err:
        raise CliError(str(err)) from err


def write_device_key(path: Path, key: DeviceKey, *, overwrite: bool) -> None:
    """Write a key file readable by its owner only; refuse to replace one unless ``overwrite``."""
    text = render_key_file(key).encode("ascii")
    if path.exists() and not overwrite:
        raise CliError(f"{path} already exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise CliError(f"cannot write {path}: directory {path.parent} does not exist")
    # Write beside the target and rename, so a crash never leaves a half-written key behind.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            temporary.replace(path)
        else:
            os.link(temporary, path)  # fails if the target appeared meanwhile: no silent overwrite
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except FileExistsError as err:
        raise CliError(f"{path} already exists; pass --force to replace it") from err
    except OSError as err:
        raise CliError(f"cannot write key file {path}: {err.strerror}") from err
    finally:
        temporary.unlink(missing_ok=True)


def load_device_key(path: Path) -> DeviceKey:
    """Read a key file; warn on stderr when other users can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(f"cannot read key file {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not a carbonlink key file (not UTF-8 text)") from err
    problem = key_file_permission_problem(mode)
    if problem is not None:
        print(f"carbonlink: warning: {path}: {problem}", file=sys.stderr)
    try:
        return parse_key_file(text)
    except KeyFormatError as err:
        raise CliError(f"{path}: {err}") from err


def load_public_key(spec: str) -> PublicKey:
    """A public key given as hex or base64 text, or as a file holding that or a device key."""
    path = Path(spec)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise CliError(f"cannot read public key file {path}: {err}") from err
        if KEY_FILE_FORMAT in text:
            return load_device_key(path).public_key
        spec = text
    try:
        return PublicKey.from_text(spec)
    except KeyFormatError as err:
        raise CliError(f"--public-key {spec.strip()[:80]!r}: {err}") from err
