"""The data directory: created with safe defaults on first start, so no config is needed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from node.settings import CONFIG_NAME, default_config_text

log = logging.getLogger(__name__)

KEY_DIR = "keys"
NODE_RSA_KEY = "node-rsa.pem"
NODE_ED25519_KEY = "node-ed25519.pem"


class DataDirError(OSError):
    """The data directory cannot be created or is not usable."""


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the first byte (never world-readable)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_data_dir(data_dir: Path) -> bool:
    """Create DATA_DIR with config and node keys if missing; True when it was created."""
    created = not data_dir.exists()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not data_dir.is_dir():
            raise DataDirError(f"{data_dir} is not a directory")
        config = data_dir / CONFIG_NAME
        if not config.exists():
            config.write_text(default_config_text(), "utf-8")
        keys = data_dir / KEY_DIR
        keys.mkdir(mode=0o700, exist_ok=True)
        rsa_path = keys / NODE_RSA_KEY
        if not rsa_path.exists():
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_private(rsa_path, _pem(rsa_key))
        ed_path = keys / NODE_ED25519_KEY
        if not ed_path.exists():
            _write_private(ed_path, _pem(ed25519.Ed25519PrivateKey.generate()))
    except PermissionError as exc:
        raise DataDirError(f"cannot write to {data_dir}: {exc.strerror}") from None
    except FileExistsError:
        raise DataDirError(f"{data_dir} exists and is not a directory") from None
    if created:
        log.info("datadir: created %s", data_dir)
    return created


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
