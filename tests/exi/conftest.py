"""Fixtures for the EXI codec tests: the native codec and the package's Java codec as oracle."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from exi_codec import NativeEXICodec
from exi_codec.codec import default_jar_path

IN_CI = os.environ.get("CI") == "true"


class JavaOracle:
    """The package's EXIficient codec (EXICodec.jar) over py4j, one JVM per test session."""

    def __init__(self) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

        logging.getLogger("py4j").setLevel(logging.CRITICAL)
        port, self._proc = launch_gateway(
            classpath=default_jar_path(),
            die_on_exit=True,
            javaopts=["--add-opens", "java.base/java.lang=ALL-UNNAMED"],
            return_proc=True,
        )
        self._gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port))
        self._codec = self._gateway.jvm.com.siemens.ct.exi.main.cmd.EXICodec()

    def encode(self, message: str, namespace: str) -> bytes:
        result = self._codec.encode(message, namespace)
        if result is None:
            raise RuntimeError(self._codec.get_last_encoding_error())
        return bytes(result)

    def decode(self, stream: bytes, namespace: str) -> str:
        result = self._codec.decode(stream, namespace)
        if result is None:
            raise RuntimeError(self._codec.get_last_decoding_error())
        return result

    def close(self) -> None:
        self._gateway.shutdown()
        self._proc.terminate()
        self._proc.wait(timeout=10)


@pytest.fixture(scope="session")
def native_codec() -> NativeEXICodec:
    return NativeEXICodec()


@pytest.fixture(scope="session")
def java_codec():
    if shutil.which("java") is None:
        if IN_CI:
            pytest.fail("CI must run the EXI differential tests, but there is no java on PATH")
        pytest.skip("no java on PATH: the Java EXI codec (oracle) cannot run")
    oracle = JavaOracle()
    yield oracle
    oracle.close()
