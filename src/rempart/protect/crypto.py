"""Authenticated encryption of column values (AES-256-GCM) and the keyring that holds the keys.

A ciphertext cell is ``enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>``: the key id is
in every value, so a file can mix keys during a rotation; the column name and key id are the
associated data, so a value moved to another column, or relabelled with another key id, fails
authentication instead of decrypting into the wrong place.

Keys come from (first match): a keyring file encrypted with a passphrase (scrypt, then
AES-256-GCM), the ``REMPART_DATA_KEYS`` environment variable (``k2:<hex>,k1:<hex>``, the first
is active), or a plain key file (mode 0600, one ``<id>:<hex>`` per line, the first active).
Every failure (wrong passphrase, missing key, tampered value) is a :class:`KeyMaterialError`:
one line, no partial result.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from rempart.errors import KeyMaterialError
from rempart.protect.tokens import TokenKey

PREFIX = "enc:v1:"
KEYRING_FORMAT = "rempart-keyring/1"
DATA_KEYS_ENV = "REMPART_DATA_KEYS"
PASSPHRASE_ENV = "REMPART_KEYRING_PASSPHRASE"  # noqa: S105 (a variable name)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_AAD_TAG = b"rempart/enc/v1\x00"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Keyring:
    """Data keys by id; ``active`` encrypts, every present key decrypts."""

    keys: dict[str, bytes] = field(default_factory=dict)
    active: str | None = None
    retired: dict[str, str] = field(default_factory=dict)  # key id -> ISO date retired
    created: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Keyring(active={self.active!r}, keys={sorted(self.keys)}, secrets=<redacted>)"

    def add(self, key_id: str | None = None, *, activate: bool = True) -> str:
        kid = key_id or f"k{len(self.keys) + len(self.retired) + 1}"
        TokenKey(kid, b"\0" * 32)  # validates the id format
        if kid in self.keys or kid in self.retired:
            raise KeyMaterialError(f"key id {kid} already used", hint="pick a new id")
        self.keys[kid] = secrets.token_bytes(32)
        self.created[kid] = datetime.now(UTC).isoformat(timespec="seconds")
        if activate or self.active is None:
            self.active = kid
        return kid

    def secret(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            state = "was retired" if key_id in self.retired else "is not in the keyring"
            raise KeyMaterialError(f"key {key_id} {state}") from None

    def retire(self, key_id: str) -> None:
        """Forget a key's secret for good (the id stays reserved)."""
        if key_id == self.active:
            raise KeyMaterialError(f"key {key_id} is active", hint="activate another key first")
        self.secret(key_id)
        del self.keys[key_id]
        self.retired[key_id] = datetime.now(UTC).isoformat(timespec="seconds")

    # ----------------------------------------------------------------- persistence

    def _payload(self) -> bytes:
        return json.dumps(
            {
                "active": self.active,
                "keys": {
                    k: {"secret": v.hex(), "created": self.created.get(k)}
                    for k, v in self.keys.items()
                },
                "retired": self.retired,
            }
        ).encode()

    def save(self, path: Path, passphrase: str) -> None:
        """Write the keyring encrypted under ``passphrase`` (atomic, mode 0600)."""
        if len(passphrase) < 8:
            raise KeyMaterialError("passphrase too short (at least 8 characters)")
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kek = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
            passphrase.encode()
        )
        doc = {
            "format": KEYRING_FORMAT,
            "kdf": {
                "name": "scrypt",
                "salt": _b64e(salt),
                "n": SCRYPT_N,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
            },
            "nonce": _b64e(nonce),
            "ciphertext": _b64e(
                AESGCM(kek).encrypt(nonce, self._payload(), KEYRING_FORMAT.encode())
            ),
        }
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, passphrase: str) -> Keyring:
        where = str(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeyMaterialError(f"cannot read keyring: {exc.strerror}", where=where) from None
        except ValueError:
            raise KeyMaterialError("keyring is not valid JSON", where=where) from None
        if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
            raise KeyMaterialError("not a Rempart keyring", where=where)
        try:
            kdf = doc["kdf"]
            kek = Scrypt(salt=_b64d(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]),
                         p=int(kdf["p"])).derive(passphrase.encode())  # fmt: skip
            plain = AESGCM(kek).decrypt(
                _b64d(doc["nonce"]), _b64d(doc["ciphertext"]), KEYRING_FORMAT.encode()
            )
        except InvalidTag:
            raise KeyMaterialError(
                "wrong passphrase, or the keyring was modified", where=where
            ) from None
        except (KeyError, TypeError, ValueError):
            raise KeyMaterialError("keyring is damaged", where=where) from None
        data = json.loads(plain)
        ring = cls(
            keys={k: bytes.fromhex(v["secret"]) for k, v in data["keys"].items()},
            active=data["active"],
            retired=dict(data.get("retired", {})),
            created={k: v.get("created") or "" for k, v in data["keys"].items()},
        )
        return ring

    @classmethod
    def from_text(cls, text: str, *, where: str) -> Keyring:
        """``id:hex`` entries separated by commas or new lines; the first is active."""
        ring = cls()
        for item in text.replace(",", "\n").splitlines():
            if not item.strip():
                continue
            key = TokenKey.parse(item, where=where)
            if len(key.secret) != 32:
                raise KeyMaterialError("data keys are 32 bytes (64 hex digits)", where=where)
            ring.keys[key.key_id] = key.secret
            ring.active = ring.active or key.key_id
        if not ring.keys:
            raise KeyMaterialError("no key found", where=where)
        return ring


def resolve_keyring(
    *,
    keyring: Path | None = None,
    passphrase: str | None = None,
    key_file: Path | None = None,
    env: str = DATA_KEYS_ENV,
) -> Keyring:
    """Keyring file (with passphrase, or ``$REMPART_KEYRING_PASSPHRASE``), else the environment
    variable, else a plain key file."""
    if keyring is not None:
        phrase = passphrase or os.environ.get(PASSPHRASE_ENV)
        if not phrase:
            raise KeyMaterialError(
                "keyring needs a passphrase", hint=f"set {PASSPHRASE_ENV} or type it when asked"
            )
        return Keyring.load(keyring, phrase)
    if os.environ.get(env):
        return Keyring.from_text(os.environ[env], where=f"${env}")
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode & 0o777
            text = key_file.read_text(encoding="ascii")
        except OSError as exc:
            msg = f"cannot read key file: {exc.strerror}"
            raise KeyMaterialError(msg, where=str(key_file)) from None
        if mode & 0o077:
            raise KeyMaterialError(f"key file is readable by others (mode {mode:o})",
                                   where=str(key_file), hint=f"chmod 600 {key_file}")  # fmt: skip
        return Keyring.from_text(text, where=str(key_file))
    raise KeyMaterialError("no data key: give --keyring, --key-file or set " + env)


class CellCipher:
    """Encrypt/decrypt single values bound to their column (AES-256-GCM)."""

    def __init__(self, keyring: Keyring, key_id: str | None = None):
        self.keyring = keyring
        self.key_id = key_id or keyring.active
        if self.key_id is None:
            raise KeyMaterialError("the keyring has no active key")
        self._aead: dict[str, AESGCM] = {}

    def _for(self, key_id: str) -> AESGCM:
        aead = self._aead.get(key_id)
        if aead is None:
            aead = self._aead[key_id] = AESGCM(self.keyring.secret(key_id))
        return aead

    @staticmethod
    def _aad(column: str, key_id: str) -> bytes:
        return _AAD_TAG + column.encode() + b"\x00" + key_id.encode()

    def encrypt(self, column: str, value: str) -> str:
        assert self.key_id is not None
        nonce = secrets.token_bytes(12)
        ct = self._for(self.key_id).encrypt(nonce, value.encode(), self._aad(column, self.key_id))
        return f"{PREFIX}{self.key_id}:{_b64e(nonce + ct)}"

    def decrypt(self, column: str, cell: str, *, where: str | None = None) -> str:
        key_id, blob = parse_cell(cell, where=where)
        try:
            raw = _b64d(blob)
            plain = self._for(key_id).decrypt(raw[:12], raw[12:], self._aad(column, key_id))
        except (InvalidTag, ValueError):
            raise KeyMaterialError(
                f"value of column {column!r} does not authenticate (wrong key, or tampered)",
                where=where,
            ) from None
        return plain.decode()


def parse_cell(cell: str, *, where: str | None = None) -> tuple[str, str]:
    """``(key id, base64 blob)`` of an ``enc:v1:`` value."""
    if not cell.startswith(PREFIX):
        raise KeyMaterialError("value is not encrypted (no enc:v1: prefix)", where=where)
    key_id, sep, blob = cell[len(PREFIX) :].partition(":")
    if not sep or not key_id:
        raise KeyMaterialError("malformed encrypted value", where=where)
    return key_id, blob


def key_ids_in(values: Iterable[str | None]) -> set[str]:
    out: set[str] = set()
    for v in values:
        if v and v.startswith(PREFIX):
            out.add(v[len(PREFIX) :].partition(":")[0])
    return out
