"""Pure-Python schema-informed EXI codec for ISO 15118 / DIN SPEC 70121 (drop-in `IEXICodec`)."""

from exi_codec.codec import NativeEXICodec
from exi_codec.errors import EXIDecodeError

__all__ = ["EXIDecodeError", "NativeEXICodec"]
