"""The stock iso15118 EVCC (unmodified, own venv) charges against our launcher over a veth pair:
DIN SPEC 70121, ISO 15118-2 DC EIM, ISO 15118-20 DC, ISO 15118-2 DC over TLS 1.2 with PnC,
ISO 15118-20 DC over TLS 1.3.

The session of each case is the one test_native_codec_interop.py also asserts on (``native_codec_session`` in
conftest.py: ``--controller sim --exi-codec native``, run once per case for both modules)."""

from __future__ import annotations

import pytest

from interop_harness import CASES, TLS_SERVER_LOG_LINE, InteropCase

pytestmark = [pytest.mark.netns, pytest.mark.hlc, pytest.mark.slow]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_stock_evcc_completes_a_dc_session(case: InteropCase, native_codec_session, request: pytest.FixtureRequest):
    pki = request.getfixturevalue("interop_pki") if case.needs_pki else None
    run = native_codec_session(case, pki)

    context = run.context()
    assert run.evcc.returncode == 0, f"EVCC exited {run.evcc.returncode}: {run.evcc.diagnosis()}{context}"
    stops = [e for e in run.exchanges if e.response == "SessionStopRes"]
    assert [e.response_code for e in stops] == ["OK"], f"SessionStopRes: {stops}{context}"
    assert stops[0].namespace.startswith(case.namespace_prefix)
    requests = {e.request for e in run.exchanges}
    missing = [name for name in case.expected_requests if name not in requests]
    assert not missing, f"requests never seen by the SECC: {missing} (seen: {sorted(requests)}){context}"
    if case.needs_pki:
        assert TLS_SERVER_LOG_LINE in run.launcher_log, f"the session did not run over TLS{context}"
    assert run.launcher_stop_status == 0, f"launcher did not stop cleanly{context}"
