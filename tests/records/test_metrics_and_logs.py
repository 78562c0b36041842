"""Prometheus text at /metrics after real sessions and faults; JSON logs carrying the session id."""

from __future__ import annotations

import io
import json
import logging
import re

from ccs_sim.observability.logs import JsonFormatter, SessionContextFilter, configure_logging, session_id_var
from ccs_sim.observability.metrics import ControllerMetrics

from records_rig import RecordsRig

#: One sample line of the text exposition format: name, optional {labels}, value.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')


def parse(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        assert SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        samples[key] = float(value)
    assert all(kind in ("counter", "gauge", "histogram") for kind in types.values())
    return samples


async def test_metrics_count_sessions_energy_faults_and_timing(records_rig: RecordsRig) -> None:
    rig = records_rig
    await rig.run_session(duration_s=2)
    energy_Wh = (await rig.status())["last_session_summary"]["energy_Wh"]
    await rig.client.post("/start_session", json={"duration_s": 30})
    await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
    await rig.client.post("/fault", json={"type": "OVERCURRENT"})
    await rig.advance(0.5)
    await rig.client.post("/fault", json={"type": "made_up_fault"})
    await rig.advance(0.5)
    await rig.client.post("/fault", json={"type": "another-made-up"})
    await rig.advance(0.5)
    response = await rig.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    assert samples['ccs_sessions_started_total{source="sim"}'] == 2
    assert samples['ccs_sessions_ended_total{end_reason="duration_elapsed",phase="COMPLETE"}'] == 1
    assert samples['ccs_sessions_ended_total{end_reason="fault",phase="ABORTED"}'] == 1
    assert samples["ccs_energy_delivered_watt_hours_total"] > energy_Wh > 0
    assert samples['ccs_faults_total{severity="emergency",type="OVERCURRENT"}'] == 1
    assert samples['ccs_faults_total{severity="emergency",type="UNKNOWN"}'] == 2  # bounded label set
    assert "ccs_control_loop_late_ticks_total" in samples and "ccs_control_loop_max_lateness_seconds" in samples
    assert "ccs_command_refusals_total" in samples
    assert samples["ccs_records_write_errors_total"] == 0 and samples["ccs_records_writes_total"] > 3
    assert samples["ccs_session_active"] == 0


def test_secc_response_histogram_and_label_escaping() -> None:
    class Stub:
        session_active = False
        late_ticks = refusals = 0
        max_tick_lateness_s = 0.0

        class meter_reading:
            energy_Wh = 0.0

    metrics = ControllerMetrics(Stub())  # type: ignore[arg-type]
    for seconds in (0.003, 0.04, 3.0):
        metrics.observe_secc_response("CurrentDemandReq", seconds)
    metrics.observe_secc_response("CurrentDemandReq", float("nan"))  # ignored
    metrics.observe_secc_response('a"b\\c\nd', 1.5)  # a label value needing escapes: still one sample line
    text = metrics.render()
    samples = parse(text)
    assert samples['ccs_secc_response_seconds_bucket{le="0.005",message="CurrentDemandReq"}'] == 1
    assert samples['ccs_secc_response_seconds_bucket{le="0.05",message="CurrentDemandReq"}'] == 2
    assert samples['ccs_secc_response_seconds_bucket{le="+Inf",message="CurrentDemandReq"}'] == 3
    assert samples['ccs_secc_response_seconds_count{message="CurrentDemandReq"}'] == 3
    assert samples['ccs_secc_response_seconds_count{message="a\\"b\\\\c\\nd"}'] == 1
    assert "_created" not in text  # no creation-time series beside the counters and histograms


async def test_json_logs_carry_the_session_id(records_rig: RecordsRig) -> None:
    rig = records_rig
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SessionContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        started = (await rig.client.post("/start_session", json={"duration_s": 30})).json()
        await rig.advance_until(lambda s: s["phase"] == "CHARGING", 20.0)
        rig.controller.hw.simulation.set_isolation_resistance(10_000.0)  # the supervisor logs the fault
        await rig.advance(0.2)
        logging.getLogger("test").info("outside", extra={"custom": 7})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    supervisor = [e for e in entries if "supervisor detected" in e["message"]]
    assert supervisor and supervisor[0]["session_id"] == started["session_id"], entries
    assert {"time", "level", "logger", "message"} <= set(supervisor[0])
    outside = [e for e in entries if e["message"] == "outside"][0]
    assert outside["custom"] == 7


def test_configure_logging_text_and_json() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        stream = io.StringIO()
        configure_logging("json", stream=stream)
        token = session_id_var.set("abc123")
        logging.getLogger("x").warning("hello %s", "world")
        session_id_var.reset(token)
        entry = json.loads(stream.getvalue())
        assert (entry["message"], entry["session_id"], entry["level"]) == ("hello world", "abc123", "WARNING")
        stream = io.StringIO()
        configure_logging("text", stream=stream)
        logging.getLogger("x").warning("plain")
        assert "[session None]: plain" in stream.getvalue()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
