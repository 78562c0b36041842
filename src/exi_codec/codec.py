"""`NativeEXICodec`: a pure-Python drop-in for iso15118's `IEXICodec` (the Java EXIficient codec).

Same namespaces, same JSON shape, same EXI options (bit-packed, header 0x80 without options,
non-strict schema-informed grammars, no string-table values), same fragment-mode rules as
`com.siemens.ct.exi.main.cmd.AbstractEXICodec` in the package's EXICodec.jar.
"""

from __future__ import annotations

import json
import os
import threading

from iso15118.shared.iexi_codec import IEXICodec

from exi_codec.decoder import decode_document
from exi_codec.encoder import EXIEncodeError, encode_document
from exi_codec.errors import EXIDecodeError
from exi_codec.grammar import Grammar, GrammarSet, build_grammar_set, decode_tables, element_grammars
from exi_codec.jar_grammars import read_jar_grammar

CODEC_VERSION = "native-0.1 (grammars of EXICodec.jar 1.55)"

XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
ISO2_MSG_DEF = "urn:iso:15118:2:2013:MsgDef"
ISO20_COMMON = "urn:iso:std:iso:15118:-20:CommonMessages"

# Namespace -> generated grammar class in the jar (EXICodec.namespace_schema_mapping).
GRAMMAR_CLASSES = {
    "urn:iso:15118:2:2010:AppProtocol": "CommonAppProtocol",
    ISO2_MSG_DEF: "ISO15118_2Grammar",
    ISO20_COMMON: "ISO15118_20_V2G_CI_CommonMessages",
    "urn:iso:std:iso:15118:-20:AC": "ISO15118_20_V2G_CI_AC",
    "urn:iso:std:iso:15118:-20:DC": "ISO15118_20_V2G_CI_DC",
    "urn:iso:std:iso:15118:-20:WPT": "ISO15118_20_V2G_CI_WPT",
    "urn:iso:std:iso:15118:-20:ACDP": "ISO15118_20_V2G_CI_ACDP",
    XMLDSIG_NS: "XMLDSIG_Core_Schema_Grammar",
    "urn:din:70121:2012:MsgDef": "DINSpec_70121",
}

# Roots the Java codec encodes in fragment mode (AbstractEXICodec.UseFragmentMode), with the
# namespace of the element it wraps them in.
_ISO2_BODY = "urn:iso:15118:2:2013:MsgBody"
_FRAGMENT_ROOTS = {
    ISO2_MSG_DEF: {
        "CertificateInstallationReq": _ISO2_BODY,
        "AuthorizationReq": _ISO2_BODY,
        "MeteringReceiptReq": _ISO2_BODY,
        "SignedInfo": XMLDSIG_NS,
        "ContractSignatureCertChain": _ISO2_BODY,
        "ContractSignatureEncryptedPrivateKey": _ISO2_BODY,
        "DHpublickey": _ISO2_BODY,
        "eMAID": _ISO2_BODY,
        "SalesTariff": "urn:iso:15118:2:2013:MsgDataTypes",
    },
    ISO20_COMMON: {
        "OEMProvisioningCertificateChain": ISO20_COMMON,
        "PnC_AReqAuthorizationMode": ISO20_COMMON,
    },
}


# Optional elements the Java codec always writes: their JAXB fields in EXICodec.jar are primitives
# (e.g. `protected short schemaID` in messages.appProtocol.SupportedAppProtocolRes), so decoding a
# stream without the element gives 0 in the JSON, and encoding a JSON without it writes 0.
# (namespace, element, child) -> (value, also when encoding); tests/exi checks each against Java.
# MeteringReceiptReq's 0 is outside SAIDType (1..255): Java writes it as an undeclared (non-strict)
# event, which the native encoder does not produce, so there the default is applied to decoding only.
JAVA_PRIMITIVE_DEFAULTS = {
    ("urn:iso:15118:2:2010:AppProtocol", "supportedAppProtocolRes", "SchemaID"): (0, True),
    (ISO2_MSG_DEF, "MeteringReceiptReq", "SAScheduleTupleID"): (0, False),
}


def default_jar_path() -> str:
    """EXICodec.jar of the installed iso15118 package (read as a zip; no JRE needed)."""
    import iso15118.shared

    return os.path.join(os.path.dirname(iso15118.shared.__file__), "EXICodec.jar")


class NativeEXICodec(IEXICodec):
    """Pure-Python schema-informed EXI codec, byte-compatible with the package's Java codec."""

    def __init__(self, jar_path: str | None = None) -> None:
        self._jar_path = jar_path or default_jar_path()
        self._grammars: dict[str, GrammarSet] = {}
        self._lock = threading.Lock()

    def grammars(self, namespace: str) -> GrammarSet:
        """Grammars for a namespace, read from the jar on first use (~0.1 s per schema)."""
        gs = self._grammars.get(namespace)
        if gs is None:
            class_name = GRAMMAR_CLASSES.get(namespace)
            if class_name is None:
                raise ValueError(f"no EXI grammar for namespace {namespace!r}")
            with self._lock:
                gs = self._grammars.get(namespace)
                if gs is None:
                    gs = build_grammar_set(*read_jar_grammar(self._jar_path, class_name))
                    _attach_java_defaults(gs, namespace)
                    self._grammars[namespace] = gs
        return gs

    def encode(self, message: str, namespace: str) -> bytes:
        return self.encode_dict(json.loads(message), namespace)

    def encode_target(self, message: dict, namespace: str) -> tuple[GrammarSet, Grammar, bool, str | None]:
        """(grammar set, content grammar, fragment?, root namespace) the message is encoded with, as Java does."""
        gs = self.grammars(namespace)
        if len(message) != 1:
            raise EXIEncodeError("the JSON message must have exactly one root key")
        root = next(iter(message))
        fragment_uri = _FRAGMENT_ROOTS.get(namespace, {}).get(root)
        if namespace == XMLDSIG_NS or fragment_uri is not None:
            return gs, gs.fragment_content, True, fragment_uri
        return gs, gs.doc_content, False, None

    def encode_dict(self, message: dict, namespace: str) -> bytes:
        gs, content, fragment, root_uri = self.encode_target(message, namespace)
        return encode_document(content, message, fragment, root_uri, grammar_set=gs)

    def decode(self, stream: bytes, namespace: str) -> str:
        return json.dumps(self.decode_dict(stream, namespace), separators=(",", ":"))

    def decode_target(self, namespace: str) -> tuple[Grammar, bool]:
        """(content grammar, fragment?) a stream of ``namespace`` is decoded with."""
        gs = self.grammars(namespace)
        if namespace == XMLDSIG_NS:
            return gs.fragment_content, True
        return gs.doc_content, False

    def decode_dict(self, stream: bytes, namespace: str) -> dict:
        """The message in ``stream``; a malformed stream raises ``EXIDecodeError`` and nothing else (an unknown
        namespace is the caller's error: ``ValueError``)."""
        content, fragment = self.decode_target(namespace)
        try:
            return decode_document(content, bytes(stream), fragment)
        except EXIDecodeError:
            raise
        except Exception as exc:  # a check the reader and value decoders lack must not leak another type
            raise EXIDecodeError(f"malformed EXI stream ({type(exc).__name__}: {exc})") from exc

    def get_version(self) -> str:
        return CODEC_VERSION


def _attach_java_defaults(gs: GrammarSet, namespace: str) -> None:
    attached = False
    for (ns, element, child), (value, on_encode) in JAVA_PRIMITIVE_DEFAULTS.items():
        if ns == namespace:
            for grammar in element_grammars(gs, element):
                grammar.decode_defaults[child] = value
                attached = True
                if on_encode:
                    grammar.encode_defaults[child] = value
    if attached:
        decode_tables(gs.grammars)  # an element with defaults is not decoded as a simple value
