"""KmsCodec: envelope encryption of journal payloads with an AWS KMS key and AES-GCM.

An invocation that encrypts gets one data key from KMS (``GenerateDataKey``, bound to the
operation by its EncryptionContext) and encrypts its values with it locally: one KMS call per
invocation, not one per step. The wrapped data key travels with every value::

    version (1 byte) | wrapped key length (2 bytes) | wrapped key | nonce (12) | AES-GCM output

An invocation that decrypts a value unwraps its key once (``Decrypt``) and caches it by its
wrapped form, to decrypt with only. It never encrypts under such a key: a value in the
journal may have been sealed by whoever may write the table and call ``GenerateDataKey``
(not ``Decrypt``) under a key they asked for, and so know; the secrets sealed under it would
be theirs to read. So each invocation that encrypts pays one ``GenerateDataKey``. The
operation id is AES-GCM's associated data, so a value moved to another operation, or
altered, fails to decrypt.

Neither ``cryptography`` nor the KMS client is imported until a codec is made and used: a
function without one starts as lean as before.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._aws import error_code, error_message
from ._errors import CodecError, ConfigurationError, JournalTampered

if TYPE_CHECKING:
    from .journal._payload import Clients

_VERSION = b"\x01"
_NONCE = 12
_CONTEXT_KEY = "asynccfn:operation"


class KmsCodec:
    """Encrypts journal payloads under the KMS key ``key_id`` (an id, ARN or alias); give it
    to ``lambda_entry(codec=KmsCodec(...))``. The function needs ``kms:GenerateDataKey`` and
    ``kms:Decrypt`` on the key (``asynccfn table template --kms-key ARN`` grants them).

    ``region`` is the key's region when it is not the function's. ``generated`` and
    ``unwrapped`` count the GenerateDataKey and Decrypt calls this codec made: one
    GenerateDataKey per invocation that encrypts, one Decrypt per data key an invocation
    meets in the journal.

    Raises:
        ConfigurationError: ``key_id`` is empty, or the ``cryptography`` package is missing
            (``pip install 'asynccfn[kms]'``).
    """

    __slots__ = ("_aesgcm", "generated", "key_id", "region", "unwrapped")

    def __init__(self, key_id: str, *, region: str | None = None) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise ConfigurationError(f"KmsCodec needs a KMS key id or ARN, got {key_id!r}")
        try:  # here, not at import: only a function with a codec pays for it
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise ConfigurationError(
                "KmsCodec needs the cryptography package: pip install 'asynccfn[kms]'"
            ) from None
        self._aesgcm: Any = AESGCM
        self.key_id = key_id
        self.region = region
        self.generated = 0
        self.unwrapped = 0

    def __repr__(self) -> str:
        return f"KmsCodec({self.key_id!r}, region={self.region!r})"

    def session(self, clients: Clients, *, context: str) -> _KmsSession:
        """A session for one invocation of operation ``context``; no KMS call until needed."""
        return _KmsSession(self, clients, context)

    async def prepare(self, clients: Clients) -> None:
        """Create the KMS client ahead of the first invocation (the runtime calls this during
        Lambda's init phase, as it prepares the journal's client)."""
        await clients.get("kms", **self.client_options())

    def client_options(self) -> dict[str, Any]:
        """The KMS client's options: the key's region when it is not the function's."""
        return {"region_name": self.region} if self.region else {}


class _KmsSession:
    """KmsCodec at work for one invocation of one operation: the data keys it unwrapped (to
    decrypt with) and the one it generated (to encrypt with)."""

    __slots__ = ("_clients", "_codec", "_context", "_current", "_keys", "_lock")

    def __init__(self, codec: KmsCodec, clients: Clients, context: str) -> None:
        self._codec = codec
        self._clients = clients
        self._context = context
        self._keys: dict[bytes, bytes] = {}  # wrapped data key -> data key
        self._current: tuple[bytes, bytes] | None = None  # (wrapped, key) it generated
        self._lock: asyncio.Lock | None = None

    async def encode(self, data: bytes) -> bytes:
        """``data`` encrypted under the data key this session generated (the first call asks
        KMS for it).

        Raises:
            CodecError: KMS refused or failed to give a data key.
        """
        wrapped, key = await self._encoding_key()
        nonce = os.urandom(_NONCE)
        sealed = self._codec._aesgcm(key).encrypt(nonce, data, self._context.encode())
        return b"".join((_VERSION, len(wrapped).to_bytes(2, "big"), wrapped, nonce, sealed))

    async def decode(self, data: bytes) -> bytes:
        """What :meth:`encode` was given.

        Raises:
            CodecError: the value is malformed, was altered, belongs to another operation, or
                KMS would not unwrap its key.
        """
        if len(data) < 3 or data[:1] != _VERSION:
            raise JournalTampered("an encrypted journal value is not in KmsCodec's format")
        size = int.from_bytes(data[1:3], "big")
        wrapped, rest = data[3 : 3 + size], data[3 + size :]
        if len(wrapped) != size or len(rest) <= _NONCE:
            raise JournalTampered("an encrypted journal value is truncated")
        key = await self._unwrap(wrapped)
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(
                self._codec._aesgcm(key).decrypt(
                    rest[:_NONCE], rest[_NONCE:], self._context.encode()
                )
            )
        except InvalidTag:
            raise JournalTampered(
                f"an encrypted journal value of operation {self._context} does not decrypt: "
                "it was altered, or it belongs to another operation"
            ) from None

    async def _encoding_key(self) -> tuple[bytes, bytes]:
        """The data key this session encrypts with, as (wrapped, key): one it obtained from
        ``GenerateDataKey`` itself, never one unwrapped from the journal (see the module's
        docstring)."""
        if self._current is not None:
            return self._current
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent branches of ctx.parallel: one key between them
            if self._current is None:
                self._current = await self._generate()
        return self._current

    async def _generate(self) -> tuple[bytes, bytes]:
        client = await self._client()
        with _translated("GenerateDataKey", self._codec.key_id):
            answer = await client.generate_data_key(
                KeyId=self._codec.key_id,
                KeySpec="AES_256",
                EncryptionContext={_CONTEXT_KEY: self._context},
            )
        self._codec.generated += 1
        wrapped, key = bytes(answer["CiphertextBlob"]), bytes(answer["Plaintext"])
        self._keys[wrapped] = key
        return wrapped, key

    async def _unwrap(self, wrapped: bytes) -> bytes:
        key = self._keys.get(wrapped)
        if key is not None:
            return key
        client = await self._client()
        with _translated("Decrypt", self._codec.key_id, context=self._context):
            answer = await client.decrypt(
                CiphertextBlob=wrapped,
                KeyId=self._codec.key_id,
                EncryptionContext={_CONTEXT_KEY: self._context},
            )
        self._codec.unwrapped += 1
        key = bytes(answer["Plaintext"])
        self._keys[wrapped] = key
        return key

    async def _client(self) -> Any:
        with _translated("creating the client", self._codec.key_id):
            return await self._clients.get("kms", **self._codec.client_options())


@contextmanager
def _translated(action: str, key_id: str, *, context: str | None = None) -> Iterator[None]:
    """botocore's errors as asynccfn's: the one place that knows KMS's."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc) or ""
        if code == "InvalidCiphertextException" and context is not None:
            raise JournalTampered(
                f"KMS would not unwrap the data key of an encrypted value of operation "
                f"{context}: it was altered, or it belongs to another operation"
            ) from None
        message = error_message(exc)
        raise CodecError(f"KMS {action} with key {key_id} failed: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise CodecError(f"KMS {action} with key {key_id} failed: {exc}") from exc
