"""The re-identification vault: per token, the identifier sealed for the DPO, never in clear.

Rempart stores no raw NIR. For the Art. 34 notification, the data controller still needs to
reach the people a token stands for, so at ingestion (the only place the NIR passes through)
each new token's identifier is *sealed* with the DPO's X25519 public key:

- a sealing session (one ingestion run) makes an ephemeral X25519 key pair, derives
  ``K = HKDF-SHA256(X25519(eph, dpo_pub), salt = eph_pub | dpo_pub, info = "rempart-vault-v1")``,
  stores ``eph_pub`` and forgets ``eph`` at the end of the run;
- each entry is ``AES-256-GCM(K, nonce, nir, aad = "rempart-vault-v1|" + token)``: bound to its
  token, so ciphertexts cannot be swapped between tokens.

Only the DPO's private key (kept off the Rempart host, passphrase-protected) recomputes ``K``;
without it the vault is ciphertext and the tokens are keyed HMACs (``rempart.protect.tokens``).
A running ingestion holds only its own session key, for identifiers it is reading in clear
anyway. ``rempart incident reidentify ID --dpo-key FILE`` is the one way back; it is audited.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from rempart.cases.models import VaultEntryRow, VaultSessionRow
from rempart.errors import KeyMaterialError, StoreError

INFO = b"rempart-vault-v1"


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dpo_key_id(pub: X25519PublicKey) -> str:
    """Public fingerprint of a DPO key: first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw(pub)).hexdigest()[:16]


def _session_key(shared: bytes, eph_pub: bytes, dpo_pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=eph_pub + dpo_pub, info=INFO).derive(shared)


def _aad(token: str) -> bytes:
    return INFO + b"|" + token.encode()


# -- DPO key files ---------------------------------------------------------------------------


def generate_dpo_keys(private_path: Path, public_path: Path, passphrase: bytes | None) -> str:
    """Write a new DPO key pair (private: PKCS#8 PEM, mode 0600); return the key id."""
    key = X25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyMaterialError(
            "refusing to overwrite an existing key", where=str(private_path)
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return dpo_key_id(key.public_key())


def load_public_key(path: Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.expanduser().read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyMaterialError(f"cannot read the DPO public key: {exc}", where=str(path)) from None
    if not isinstance(key, X25519PublicKey):
        raise KeyMaterialError("the DPO public key must be an X25519 key", where=str(path))
    return key


def load_private_key(path: Path, passphrase: bytes | None) -> X25519PrivateKey:
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise KeyMaterialError(
            f"cannot read the DPO key: {exc.strerror}", where=str(path)
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        raise KeyMaterialError(
            "the DPO key is protected by a passphrase", where=str(path), hint="--passphrase-env"
        ) from None
    except ValueError:
        raise KeyMaterialError(
            "not a DPO private key, or wrong passphrase", where=str(path)
        ) from None
    if not isinstance(key, X25519PrivateKey):
        raise KeyMaterialError("the DPO key must be an X25519 private key", where=str(path))
    return key


# -- sealing (ingestion side) ----------------------------------------------------------------


class Vault:
    """Seals identifiers per token for the DPO. Call ``add`` per event, ``close`` at the end.

    ``add`` is idempotent: a token already in the vault (from any run) is not sealed again.
    Entries are written in batches of ``batch`` (and on ``flush``/``close``).
    """

    def __init__(
        self, sessions: sessionmaker[Session], dpo_public: X25519PublicKey, *, batch: int = 5000
    ) -> None:
        self._sessions = sessions
        self._dpo_raw = _raw(dpo_public)
        self._dpo = dpo_public
        self._batch = batch
        self._pending: dict[str, str] = {}
        self._seen: set[str] = set()
        self._aead: AESGCM | None = None
        self._session_id: int | None = None
        self.added = 0

    @classmethod
    def from_public_key_file(cls, sessions: sessionmaker[Session], path: Path) -> Vault:
        return cls(sessions, load_public_key(path))

    def _open_session(self) -> None:
        eph = X25519PrivateKey.generate()
        eph_pub = _raw(eph.public_key())
        key = _session_key(eph.exchange(self._dpo), eph_pub, self._dpo_raw)
        del eph  # the private half is never stored
        with self._sessions.begin() as s:
            row = VaultSessionRow(
                created_at=time.time(), dpo_key_id=dpo_key_id(self._dpo), ephemeral_public=eph_pub
            )
            s.add(row)
            s.flush()
            self._session_id = row.id
        self._aead = AESGCM(key)

    def add(self, token: str, identifier: str) -> None:
        if token in self._seen:
            return
        self._seen.add(token)
        self._pending[token] = identifier
        if len(self._pending) >= self._batch:
            self.flush()

    def add_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        for token, identifier in pairs:
            self.add(token, identifier)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        with self._sessions.begin() as s:
            existing = set(
                s.scalars(select(VaultEntryRow.token).where(VaultEntryRow.token.in_(list(pending))))
            )
        fresh = {t: i for t, i in pending.items() if t not in existing}
        if not fresh:
            return
        if self._aead is None:
            self._open_session()
        assert self._aead is not None and self._session_id is not None
        rows = []
        for token, identifier in fresh.items():
            nonce = secrets.token_bytes(12)
            ct = self._aead.encrypt(nonce, identifier.encode(), _aad(token))
            rows.append(
                {"token": token, "session_id": self._session_id, "nonce": nonce, "ciphertext": ct}
            )
        with self._sessions.begin() as s:
            dialect = s.get_bind().dialect.name
            if dialect == "sqlite":
                s.execute(sqlite_insert(VaultEntryRow).on_conflict_do_nothing(), rows)
            elif dialect == "postgresql":
                s.execute(pg_insert(VaultEntryRow).on_conflict_do_nothing(), rows)
            else:  # pragma: no cover - other databases: plain insert of checked-new tokens
                s.execute(insert(VaultEntryRow), rows)
        self.added += len(rows)

    def close(self) -> None:
        self.flush()
        self._aead = None  # the session key goes with the run

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- opening (DPO side) ----------------------------------------------------------------------


def reveal(
    sessions: sessionmaker[Session], dpo_private: X25519PrivateKey, tokens: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """Identifiers of ``tokens`` (found) and the tokens the vault does not hold (missing)."""
    wanted = sorted(set(tokens))
    dpo_pub = dpo_private.public_key()
    kid = dpo_key_id(dpo_pub)
    found: dict[str, str] = {}
    keys: dict[int, AESGCM] = {}
    with sessions() as s:
        session_rows: Mapping[int, VaultSessionRow] = {
            r.id: r for r in s.scalars(select(VaultSessionRow))
        }
        for i in range(0, len(wanted), 5000):
            chunk = wanted[i : i + 5000]
            for e in s.scalars(select(VaultEntryRow).where(VaultEntryRow.token.in_(chunk))):
                sess = session_rows.get(e.session_id)
                if sess is None:
                    raise StoreError("vault entry without its session", where=e.token)
                if sess.dpo_key_id != kid:
                    raise KeyMaterialError(
                        f"the vault was sealed for DPO key {sess.dpo_key_id}, not {kid}"
                    )
                aead = keys.get(sess.id)
                if aead is None:
                    eph = X25519PublicKey.from_public_bytes(sess.ephemeral_public)
                    shared = dpo_private.exchange(eph)
                    aead = AESGCM(_session_key(shared, sess.ephemeral_public, _raw(dpo_pub)))
                    keys[sess.id] = aead
                try:
                    found[e.token] = aead.decrypt(e.nonce, e.ciphertext, _aad(e.token)).decode()
                except InvalidTag:
                    raise KeyMaterialError(
                        "a vault entry fails authentication (wrong key or tampered)",
                        where=e.token,
                    ) from None
    return found, [t for t in wanted if t not in found]
