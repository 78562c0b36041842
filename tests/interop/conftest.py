"""Fixtures of the interoperability tests (see interop_harness.py for the pieces they use)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evse_ev.demo_network import VethLink, netns_unavailable_reason
from interop_harness import (
    InteropCase,
    LauncherProcess,
    SessionRun,
    ensure_evcc_venv,
    generate_pki,
    run_session_on_fresh_launcher,
)

IN_CI = os.environ.get("CI") == "true"
ISO15118_MISSING_REASON = "iso15118 is not installed (scripts/setup.sh hlc, or CCS_SIM_TEST_HLC=1 scripts/test.sh)"

if importlib.util.find_spec("iso15118") is None and not IN_CI:
    # A core-only checkout (scripts/test.sh without hlc) still runs the rest of the suite. Under CI the
    # modules are collected anyway, so a missing iso15118 is a loud import error there, never a skip.
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config: pytest.Config) -> str | None:
    if importlib.util.find_spec("iso15118") is None and not IN_CI:
        return f"tests/interop not collected: {ISO15118_MISSING_REASON}"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip outside CI; in CI the interoperability tests must run, so fail instead."""
    if IN_CI:
        pytest.fail(f"CI must run the interoperability tests, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def evcc_python() -> Path:
    """The stock EVCC's interpreter in .venv-evcc (created by scripts/setup-evcc.sh on first use)."""
    if shutil.which("java") is None:
        skip_or_fail("no 'java' on PATH: the iso15118 EXI codec needs a JRE (scripts/install-system-deps.sh java)")
    return ensure_evcc_venv()


@pytest.fixture(scope="session")
def interop_pki(tmp_path_factory: pytest.TempPathFactory, evcc_python: Path) -> Path:
    """A test PKI generated now by the package's create_certs.sh (never committed), shared by the TLS cases."""
    if shutil.which("openssl") is None:
        skip_or_fail("no 'openssl' on PATH: create_certs.sh needs it")
    return generate_pki(tmp_path_factory.mktemp("interop") / "pki")


@pytest.fixture
def secc_launcher(request: pytest.FixtureRequest, veth_link: VethLink, tmp_path: Path,
                  evcc_python: Path) -> Iterator[LauncherProcess]:
    """Our launcher (not yet started) in the EVSE namespace of ``veth_link``; the controller name is the
    fixture's parameter (``@pytest.mark.parametrize("secc_launcher", ["sim"], indirect=True)``)."""
    controller = getattr(request, "param", "sim")
    launcher = LauncherProcess(link=veth_link, controller=controller, workdir=tmp_path / f"secc-{controller}")
    try:
        yield launcher
    finally:
        launcher.stop()


#: The launcher of ``native_codec_session``: the sim controller with the native EXI codec named explicitly.
NATIVE_SIM_LAUNCHER_ARGS = ("--exi-codec", "native")


@pytest.fixture(scope="session")
def native_codec_session(tmp_path_factory: pytest.TempPathFactory, evcc_python: Path
                         ) -> Callable[[InteropCase, Path | None], SessionRun]:
    """``native_codec_session(case, pki)``: the stock EVCC's session against ``evse_main --controller sim
    --exi-codec native`` (a launcher and a veth pair of its own, stopped and removed after it), run once per case
    for the whole test run: test_evcc_sessions.py and test_native_codec_interop.py assert on the same session,
    which they used to run twice with the same launcher (the native codec is also the default, see
    tests/exi/test_codec_selection.py; the default-argument launcher runs every case in test_hal_sessions.py).
    A run that raised raises again for the second test, rather than being run a second time."""
    runs: dict[str, SessionRun | BaseException] = {}

    def session_of(case: InteropCase, pki: Path | None) -> SessionRun:
        if case.id not in runs:
            reason = netns_unavailable_reason()
            if reason is not None:
                if IN_CI:
                    pytest.fail(f"CI must run the namespace tests, but: {reason}")
                pytest.skip(reason)
            try:
                runs[case.id] = run_session_on_fresh_launcher(
                    case, tmp_path_factory.mktemp(f"native-{case.id}"), pki, namespace_prefix="iopn",
                    extra_args=NATIVE_SIM_LAUNCHER_ARGS)
            except Exception as error:
                runs[case.id] = error
                raise
        run = runs[case.id]
        if isinstance(run, BaseException):
            pytest.fail(f"the {case.id} session failed in an earlier test: {run!r}")
        return run

    return session_of
