"""A stand-in for the EXI codec in tests of what wraps it (the launcher's exchange timing): ``decode`` gives the
JSON it was built with, ``encode`` fixed bytes; ``v2g_json`` builds such a JSON message.

Importable as ``fake_exi_codec`` from every test folder (tests/conftest.py puts tests/ on ``sys.path``, as for
``served_process``)."""

from __future__ import annotations

import json


class FakeCodec:
    def __init__(self, decoded: str) -> None:
        self.decoded = decoded

    def decode(self, stream: bytes, namespace: str) -> str:
        return self.decoded

    def encode(self, message: str, namespace: str) -> bytes:
        return b"exi"

    def get_version(self) -> str:
        return "fake"


def v2g_json(name: str, content: dict) -> str:
    """A V2G_Message with ``name`` as its body's one element."""
    return json.dumps({"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {name: content}}})
