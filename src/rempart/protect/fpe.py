"""NIR-shaped, format-preserving tokens that can never be a valid NIR.

Some systems need a value shaped like a NIR (15 digits, same field widths) where the real one
used to be. ``NirFpe`` turns a NIR into such a token with FF3-1 (NIST SP 800-38G Rev. 1
format-preserving encryption, through the ``ff3`` package): reversible with the key, and
deterministic per key and purpose.

Why FF3-1 and not FF1: no FF1 package on PyPI is both maintained and widely used (``fpe`` was
last released in 2021; the 2026 ``fpr-ff1``/``libffx`` have no track record), whereas ``ff3`` is
the most used FPE package and implements FF3-1's 56-bit tweak. The impossibility property
below does not depend on the cipher.

A token is never a valid NIR, by construction, twice over:

* its month field is one of 00, 13-19, 43-49, which no NIR uses (valid: 01-12, 20-42, 50-99);
* its 2-digit key is chosen among the 99 values that are *not* the check key of its first 13
  digits, so any checksum-only validator (python-stdnum's included) rejects it too.

Layout: the plaintext is ``c`` (0 = digits as written, 1 = Corsica 2A, 2 = 2B, with the
department written 20) followed by the 13-digit body; an integer below 3e13, enciphered as 14
decimal digits. The ciphertext integer ``C < 1e14`` is spread in mixed radix over the token:
``C mod 99`` picks the (wrong) key, then ``mod 15`` the impossible month, and the remaining
11 digits fill sex, year, place and serial.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from ff3 import FF3Cipher

from rempart.errors import KeyMaterialError
from rempart.protect import identifiers as ids
from rempart.protect.tokens import TokenKey

IMPOSSIBLE_MONTHS = ("00", "13", "14", "15", "16", "17", "18", "19",
                     "43", "44", "45", "46", "47", "48", "49")  # fmt: skip
_PLAIN_LIMIT = 3 * 10**13
_CIPHER_LIMIT = 10**14


class NirFpe:
    """Reversible NIR -> NIR-shaped token, per key and purpose."""

    def __init__(self, key: TokenKey, purpose: str = "nir-fpe"):
        self.key_id = key.key_id
        self.purpose = purpose
        info = b"rempart/fpe/ff3-1/" + purpose.encode()
        aes_key = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(key.secret)
        tweak = hmac.new(key.secret, b"tweak\x00" + info, hashlib.sha256).digest()[:7]
        self._cipher = FF3Cipher(aes_key.hex(), tweak.hex(), radix=10)

    def tokenize(self, nir_text: str) -> str:
        """NIR (any accepted writing) -> 15-digit token that fails every NIR check."""
        nir = ids.validate_nir(nir_text)
        dept = nir[5:7]
        flag = {"2A": "1", "2B": "2"}.get(dept, "0")
        body = nir[:5] + ("20" if flag != "0" else dept) + nir[7:13]
        cipher = int(self._cipher.encrypt(flag + body))
        key_index, rest = cipher % 99, cipher // 99
        month_index, rest = rest % 15, rest // 15
        d = f"{rest:011d}"
        token_body = d[0] + d[1:3] + IMPOSSIBLE_MONTHS[month_index] + d[3:8] + d[8:11]
        valid_key = int(ids.nir_key(token_body))
        key = key_index if key_index < valid_key else key_index + 1
        return token_body + f"{key:02d}"

    def detokenize(self, token: str) -> str:
        """Token -> the NIR it stands for; ``KeyMaterialError`` when it is not one of ours."""
        t = token.strip()
        if len(t) != 15 or not ids.ascii_digits(t) or t[3:5] not in IMPOSSIBLE_MONTHS:
            raise KeyMaterialError("not a NIR-shaped token", where=f"purpose {self.purpose}")
        body, key = t[:13], int(t[13:])
        valid_key = int(ids.nir_key(body))
        if key == valid_key:
            raise KeyMaterialError("not a NIR-shaped token", where=f"purpose {self.purpose}")
        key_index = key if key < valid_key else key - 1
        rest = int(body[0] + body[1:3] + body[5:10] + body[10:13])
        cipher = (rest * 15 + IMPOSSIBLE_MONTHS.index(body[3:5])) * 99 + key_index
        if cipher >= _CIPHER_LIMIT:
            raise KeyMaterialError("not a NIR-shaped token", where=f"purpose {self.purpose}")
        plain = str(self._cipher.decrypt(f"{cipher:014d}"))
        flag, nbody = plain[0], plain[1:]
        if int(plain) >= _PLAIN_LIMIT or flag not in "012":
            raise KeyMaterialError(
                "token does not decrypt with this key (wrong key or purpose)",
                where=f"key {self.key_id}",
            )
        if flag != "0":
            nbody = nbody[:5] + ("2A" if flag == "1" else "2B") + nbody[7:]
        nir = nbody + ids.nir_key(nbody)
        if not ids.is_valid_nir(nir):
            raise KeyMaterialError(
                "token does not decrypt with this key (wrong key or purpose)",
                where=f"key {self.key_id}",
            )
        return nir
