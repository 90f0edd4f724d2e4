"""Webhook signatures: Ed25519 over ``timestamp + "." + body``, and the legacy HMAC-SHA256.

The Ed25519 signing key is a 32-byte seed kept in the kernel's vault (provider ``comfyvn-server``,
field ``webhook-signing-key``), created on first use. Receivers verify with the public key alone
(``GET /api/modder/hooks/pubkey``); `verify_signature` is the reference check they can copy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from typing import Any

import nacl.exceptions
import nacl.signing
from comfyvn.secrets import Vault

__all__ = ["VAULT_FIELD", "VAULT_PROVIDER", "Signer", "hmac_signature", "signed_message", "verify_signature"]

VAULT_PROVIDER = "comfyvn-server"
VAULT_FIELD = "webhook-signing-key"
SIGNATURE_PREFIX = "ed25519="
HMAC_PREFIX = "sha256="


def signed_message(timestamp: str, body: bytes) -> bytes:
    """The exact bytes that are signed: the ``X-ComfyVN-Timestamp`` value, a dot, the raw body."""
    return timestamp.encode("ascii") + b"." + body


def verify_signature(public_key_b64: str, timestamp: str, body: bytes, header: str) -> bool:
    """Check an ``X-ComfyVN-Signature`` header (``ed25519=<base64>``) with only the public key."""
    if not header.startswith(SIGNATURE_PREFIX):
        return False
    try:
        key = nacl.signing.VerifyKey(base64.b64decode(public_key_b64, validate=True))
        key.verify(signed_message(timestamp, body), base64.b64decode(header[len(SIGNATURE_PREFIX) :], validate=True))
    except (ValueError, nacl.exceptions.BadSignatureError, nacl.exceptions.TypeError):
        return False
    return True


def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The legacy ``X-ComfyVN-Signature-HMAC`` value: ``sha256=<hex>`` of the same message."""
    digest = hmac.new(secret.encode("utf-8"), signed_message(timestamp, body), hashlib.sha256).hexdigest()
    return HMAC_PREFIX + digest


class Signer:
    """Loads (or creates) the signing key from the vault once and keeps it in memory.

    Kept in memory because every vault read is itself an audited bus event: reading per delivery
    would make each delivery emit an event that webhooks subscribed to everything would deliver.
    """

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._key: nacl.signing.SigningKey | None = None
        self._lock = threading.Lock()

    def key(self) -> nacl.signing.SigningKey:
        """The signing key; raises the vault's 503 error when the vault cannot be opened."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    seed = self._vault.get(VAULT_PROVIDER, VAULT_FIELD)
                    if seed is None:
                        fresh = nacl.signing.SigningKey.generate()
                        self._vault.set(VAULT_PROVIDER, VAULT_FIELD, base64.b64encode(bytes(fresh)).decode("ascii"))
                        self._key = fresh
                    else:
                        self._key = nacl.signing.SigningKey(base64.b64decode(seed))
        return self._key

    def public_info(self) -> dict[str, Any]:
        verify_key = self.key().verify_key
        raw = bytes(verify_key)
        return {
            "algorithm": "ed25519",
            "public_key": base64.b64encode(raw).decode("ascii"),
            "public_key_hex": raw.hex(),
            "key_id": hashlib.sha256(raw).hexdigest()[:16],
            "signature_header": "X-ComfyVN-Signature",
            "timestamp_header": "X-ComfyVN-Timestamp",
            "signed_message": "<X-ComfyVN-Timestamp> + '.' + <raw request body>",
            "signature_format": "ed25519=<base64 of the 64-byte signature>",
        }

    def sign(self, timestamp: str, body: bytes) -> str:
        signature = self.key().sign(signed_message(timestamp, body)).signature
        return SIGNATURE_PREFIX + base64.b64encode(signature).decode("ascii")
