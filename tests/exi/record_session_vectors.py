"""Record the EXI messages of real sessions as differential vectors (run by hand, as root; not a test).

    sudo .venv/bin/python tests/exi/record_session_vectors.py [--exi-codec java] [--out tests/exi/vectors/sessions.jsonl]

Runs the five interoperability cases (tests/interop/interop_harness.py: the stock EVCC against our
launcher over a veth pair) with the SECC's codec traced (``EXI_CODEC_TRACE``, evse_secc.codecs):
every message the EVCC sent (decoded by the SECC) and every message the SECC encoded, with the Java
codec's bytes and JSON. Session-specific values stay as recorded (they are test data, generated now:
session IDs, timestamps, a test PKI's certificates and signatures). Each distinct (namespace, op,
JSON) is kept once, in session order, tagged with its case.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

from evse_ev.demo_network import VethLink, netns_unavailable_reason

REPO_ROOT = Path(__file__).resolve().parents[2]
HARNESS_PATH = REPO_ROOT / "tests" / "interop" / "interop_harness.py"
DEFAULT_OUT = Path(__file__).resolve().parent / "vectors" / "sessions.jsonl"
NAMESPACE_PREFIX = "exirec"


def load_harness():
    spec = importlib.util.spec_from_file_location("interop_harness", HARNESS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def record_case(harness, case, workdir: Path, pki: Path | None, exi_codec: str) -> list[dict]:
    trace = workdir / "trace.jsonl"
    os.environ["EXI_CODEC_TRACE"] = str(trace)
    try:
        with VethLink(prefix=NAMESPACE_PREFIX) as link:
            launcher = harness.LauncherProcess(link=link, controller="sim", workdir=workdir,
                                               extra_args=("--exi-codec", exi_codec))
            launcher.start(case, pki)
            try:
                result = harness.run_evcc(link, case, workdir / "evcc", pki)
            finally:
                launcher.stop()
    finally:
        del os.environ["EXI_CODEC_TRACE"]
    stops = [e for e in launcher.exchanges() if e.response == "SessionStopRes"]
    if result.returncode != 0 or [e.response_code for e in stops] != ["OK"]:
        raise RuntimeError(f"{case.id}: EVCC exited {result.returncode}, SessionStopRes {stops}\n"
                           f"{result.log[-3000:]}\n{launcher.log_text()[-3000:]}")
    return [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exi-codec", default="java", choices=("java", "native"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--case", action="append", help="case ids (default: all five)")
    args = parser.parse_args(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"record_session_vectors: {reason}")
    harness = load_harness()
    harness.ensure_evcc_venv()
    cases = [c for c in harness.CASES if not args.case or c.id in args.case]
    seen: set[str] = set()
    vectors: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="exirec-") as tmp:
        pki = harness.generate_pki(Path(tmp) / "pki") if any(c.needs_pki for c in cases) else None
        for case in cases:
            records = record_case(harness, case, Path(tmp) / case.id, pki if case.needs_pki else None,
                                  args.exi_codec)
            for record in records:
                key = json.dumps([record["namespace"], record["op"], record["json"]], sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    vectors.append({"case": case.id, **record})
            print(f"{case.id}: {len(records)} messages", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(v, sort_keys=True) + "\n" for v in vectors), encoding="utf-8")
    print(f"{len(vectors)} distinct vectors -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
