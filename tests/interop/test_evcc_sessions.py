"""The stock iso15118 EVCC (unmodified, own venv) charges against our launcher over a veth pair:
DIN SPEC 70121, ISO 15118-2 DC EIM, ISO 15118-20 DC, ISO 15118-2 DC over TLS 1.2 with PnC,
ISO 15118-20 DC over TLS 1.3."""

from __future__ import annotations

from pathlib import Path

import pytest

from evse_ev.demo_network import VethLink
from interop_harness import CASES, TLS_SERVER_LOG_LINE, InteropCase, LauncherProcess, run_evcc

pytestmark = [
    pytest.mark.netns, pytest.mark.hlc, pytest.mark.slow,
    pytest.mark.parametrize("veth_link", ["iop"], indirect=True),  # namespace name prefix
]


@pytest.mark.parametrize("secc_launcher", ["sim"], indirect=True)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_stock_evcc_completes_a_dc_session(case: InteropCase, secc_launcher: LauncherProcess,
                                           veth_link: VethLink, tmp_path: Path, request: pytest.FixtureRequest):
    pki = request.getfixturevalue("interop_pki") if case.needs_pki else None
    secc_launcher.start(case, pki)

    evcc = run_evcc(veth_link, case, tmp_path / "evcc", pki)

    exchanges = secc_launcher.exchanges()
    context = f"\n--- EVCC log tail ---\n{evcc.log[-3000:]}\n--- SECC log tail ---\n{secc_launcher.log_text()[-3000:]}"
    assert evcc.returncode == 0, f"EVCC exited {evcc.returncode}: {evcc.diagnosis()}{context}"
    stops = [e for e in exchanges if e.response == "SessionStopRes"]
    assert [e.response_code for e in stops] == ["OK"], f"SessionStopRes: {stops}{context}"
    assert stops[0].namespace.startswith(case.namespace_prefix)
    requests = {e.request for e in exchanges}
    missing = [name for name in case.expected_requests if name not in requests]
    assert not missing, f"requests never seen by the SECC: {missing} (seen: {sorted(requests)}){context}"
    if case.needs_pki:
        assert TLS_SERVER_LOG_LINE in secc_launcher.log_text(), f"the session did not run over TLS{context}"
    assert secc_launcher.stop() == 0, f"launcher did not stop cleanly{context}"
