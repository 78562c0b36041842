"""Security profiles 1-3 against the test CSMS, with certificates the test makes; a refusal is a clear state in
GET /ocpp (connection not booted, ``last_error.kind``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from csms import TestCsms, make_pki
from fastapi import FastAPI
from link_rig import STATION_ID, controller_for, make_config, wait_booted, wait_state

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.ocpp.config import OcppConfigError
from ccs_sim.ocpp.routes import router

PASSWORD = "0123456789abcdef0123"


async def ocpp_view(client: OcppClient) -> dict[str, Any]:
    app = FastAPI()
    app.include_router(router)
    app.state.operations = SimpleNamespace(ocpp=client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get("/ocpp")
    assert response.status_code == 200
    return response.json()


async def run_client(tmp_path: Path, csms: TestCsms, version: str, **config: Any) -> OcppClient:
    client = OcppClient(controller_for(tmp_path), make_config(csms, version, **config), protocol_second_s=0.01)
    await client.start()
    return client


async def expect_refused(client: OcppClient, kind: str, words: str) -> None:
    try:
        await wait_state(client.link, lambda state: state.last_error is not None)
        view = await ocpp_view(client)
        assert view["connection"] in ("connecting", "disconnected") and view["boot_status"] is None
        assert view["last_error"]["kind"] == kind, view["last_error"]
        assert words in view["last_error"]["message"]
        assert not client.link.booted.is_set()
    finally:
        await client.stop()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_profile_1_basic_auth(tmp_path: Path, version: str) -> None:
    async with TestCsms(version, password=PASSWORD) as csms:
        client = await run_client(tmp_path, csms, version, security_profile=1, password=PASSWORD)
        try:
            await wait_booted(client.link)
            assert (await ocpp_view(client))["connection"] == "booted"
        finally:
            await client.stop()
        wrong = await run_client(tmp_path, csms, version, security_profile=1, password="not-the-password-1234")
        await expect_refused(wrong, "auth_rejected", "HTTP 401")
        assert csms.refusals and csms.refusals[-1] == "basic auth"


async def test_profile_2_tls_with_basic_auth(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, STATION_ID)
    async with TestCsms("2.0.1", password=PASSWORD, ssl_context=pki.server_context()) as csms:
        assert csms.url.startswith("wss://")
        client = await run_client(tmp_path, csms, "2.0.1", security_profile=2, password=PASSWORD,
                                  ca_file=Path(pki.files["ca_cert"]))
        try:
            await wait_booted(client.link)
        finally:
            await client.stop()
    async with TestCsms("1.6", password=PASSWORD, ssl_context=pki.server_context(untrusted=True)) as rogue:
        untrusted = await run_client(tmp_path, rogue, "1.6", security_profile=2, password=PASSWORD,
                                     ca_file=Path(pki.files["ca_cert"]))
        await expect_refused(untrusted, "server_untrusted", "not trusted")
        assert rogue.calls_received() == []


async def test_profile_3_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, STATION_ID)
    certs = {"ca_file": Path(pki.files["ca_cert"]), "client_cert_file": Path(pki.files["client_cert"]),
             "client_key_file": Path(pki.files["client_key"])}
    async with TestCsms("1.6", ssl_context=pki.server_context(client_ca=True), require_client_cn=True) as csms:
        client = await run_client(tmp_path, csms, "1.6", security_profile=3, **certs)
        try:
            await wait_booted(client.link)
            assert (await ocpp_view(client))["security_profile"] == 3
        finally:
            await client.stop()
        # no client certificate at all (profile 2 settings against an mTLS CSMS): the TLS handshake fails
        no_cert = await run_client(tmp_path, csms, "1.6", security_profile=2, password=PASSWORD,
                                   ca_file=certs["ca_file"])
        await expect_refused(no_cert, "tls_failed", "certificate")
        # a certificate of another station: the CSMS refuses it (CN is not the station id)
        other = await run_client(tmp_path, csms, "1.6", security_profile=3, station_id="CS2", **certs)
        await expect_refused(other, "auth_rejected", "HTTP 403")


def test_profile_3_without_a_client_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    from ccs_sim.ocpp.config import OcppConfig

    with pytest.raises(OcppConfigError, match="--ocpp-client-cert"):
        OcppConfig(url="wss://127.0.0.1:1/ocpp", station_id="CS1", security_profile=3).check()
