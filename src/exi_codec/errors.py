"""The codec's errors. ``EXIDecodeError`` is the only exception ``NativeEXICodec.decode`` raises for a malformed
stream; it is a ``ValueError`` (as it always was), so callers catching ``ValueError`` or ``Exception`` (iso15118's
``from_exi`` turns any exception into its ``EXIDecodingError``) see no change."""

from __future__ import annotations


class EXIDecodeError(ValueError):
    """The bytes are not an EXI stream of the expected schema (truncated, corrupted, or out of range)."""
