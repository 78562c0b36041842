"""The dashboard in headless Chromium against a live server at speed 10: it loads cleanly, runs a session
to COMPLETE while the numbers and charts move, shows an injected fault's cause, shows why a command was
refused, and keeps 30 minutes of samples fast to draw in bounded memory."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"


def expect():  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def wait_until_idle(page, live_server) -> None:  # type: ignore[no-untyped-def]
    """End any session a previous test left running, and wait for its wind-down."""
    page.request.post(f"{live_server.url}/stop_session")
    page.wait_for_function(
        "(() => { const s = window.dashboard.state.snapshot; return s && !s.status.session_active && "
        "['idle', 'ended'].includes(s.status.stage); })()", timeout=15_000)


def start_from_page(page, **fields: str) -> None:  # type: ignore[no-untyped-def]
    for name, value in fields.items():
        selector = f"#form-start [name={name}]"
        if name == "ev_preset":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#btn-start")
    expect()(page.locator("#result-session")).to_contain_text("started session", timeout=5_000)


def number(page, selector: str) -> float:  # type: ignore[no-untyped-def]
    return float(page.locator(selector).inner_text())


def test_page_loads_live_with_no_console_errors(dashboard) -> None:
    page = dashboard
    expect()(page.locator("#phase")).not_to_have_text("—")
    expect()(page.locator("#speed")).to_have_text("10×")
    expect()(page.locator("#speed-readonly")).to_have_text("10×")
    assert page.locator("#fault-type option").count() >= 10
    assert page.locator("#sim-controls").is_visible()
    expect()(page.locator("#panel-bms")).to_contain_text("not reported")
    expect()(page.locator("#history-source")).to_contain_text("durable records")
    page.wait_for_timeout(500)  # a few stream events
    assert page.console_log.errors == []


def test_session_started_from_the_page_runs_to_complete_while_numbers_and_charts_update(dashboard, live_server) -> None:
    page = dashboard
    wait_until_idle(page, live_server)
    start_from_page(page, target_voltage="400", initial_current="80", duration_s="25", ev_preset="follow")
    expect()(page.locator("#phase")).to_have_text("CHARGING", timeout=10_000)
    expect()(page.locator("#contactor")).to_have_text("CLOSED")
    expect()(page.locator("#form-start [data-inforce=duration_s]")).to_have_text("in force 25")
    page.wait_for_function("Number(document.getElementById('current').textContent) > 30", timeout=5_000)
    energy_before = number(page, "#energy")
    points_before = int(page.locator("#chart-current").get_attribute("data-points"))
    page.wait_for_timeout(600)
    assert number(page, "#energy") > energy_before
    assert int(page.locator("#chart-current").get_attribute("data-points")) > points_before
    assert 380 < number(page, "#voltage") < 420
    expect()(page.locator("#legend-current")).to_contain_text("EV target")

    expect()(page.locator("#phase")).to_have_text("COMPLETE", timeout=15_000)
    expect()(page.locator("#banner")).to_contain_text("COMPLETE")
    expect()(page.locator("#banner")).to_contain_text("delivered")
    expect()(page.locator("#contactor")).to_have_text("OPEN", timeout=5_000)
    session_id = page.evaluate("window.dashboard.state.snapshot.status.session_id")
    row = page.locator(f"#history tr[data-id='{session_id}']")
    expect()(row).to_contain_text("COMPLETE", timeout=5_000)

    with page.expect_download() as download_info:
        row.locator("[data-csv]").click()
    text = Path(download_info.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) >= 20  # ~3 s of wall time at 10 samples/s
    charging = [r for r in rows if r["phase"] == "CHARGING" and float(r["current_A"] or 0) > 30]
    assert charging and all(r["ev_target_current_A"] for r in charging)
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] > 25.0
    assert page.console_log.errors == []


def test_injected_fault_shows_aborted_with_its_cause(dashboard, live_server) -> None:
    page = dashboard
    wait_until_idle(page, live_server)
    start_from_page(page, duration_s="120", initial_current="60")
    expect()(page.locator("#phase")).to_have_text("CHARGING", timeout=10_000)
    page.select_option("#fault-type", "ISOLATION_FAULT")
    expect()(page.locator("#fault-description")).to_contain_text("insulation resistance")
    page.click("[data-testid=inject-fault]")
    expect()(page.locator("#result-fault")).to_contain_text("ISOLATION_FAULT injected (emergency)")
    expect()(page.locator("#phase")).to_have_text("ABORTED", timeout=5_000)
    banner = page.locator("#banner")
    expect()(banner).to_contain_text("ABORTED")
    expect()(banner).to_contain_text("ISOLATION_FAULT")
    expect()(banner).to_contain_text("emergency shutdown")
    expect()(banner).to_contain_text("below 100 kΩ")
    expect()(page.locator("#active-fault")).to_have_text("ISOLATION_FAULT")
    expect()(page.locator("#inforce-fault")).to_have_text("ISOLATION_FAULT")
    expect()(page.locator("#contactor")).to_have_text("OPEN", timeout=5_000)
    expect()(page.locator("#current")).to_have_text("0.0", timeout=5_000)
    assert page.console_log.errors == []


def test_refused_commands_show_the_servers_reason(dashboard, live_server) -> None:
    page = dashboard
    wait_until_idle(page, live_server)
    page.fill("#input-pwm", "150")
    page.click("[data-testid=set-pwm]")
    result = page.locator("#result-pwm")
    expect()(result).to_contain_text("Refused")
    expect()(result).to_contain_text("duty")
    expect()(result).to_contain_text("less than or equal to 100")
    expect()(page.locator("#asked-pwm")).to_have_text("150 %")
    expect()(page.locator("#inforce-pwm")).to_have_text("100 %")

    start_from_page(page, duration_s="60")
    page.click("#btn-start")
    expect()(page.locator("#result-session")).to_contain_text("Refused: Session already in progress")
    expect()(page.locator("#command-log")).to_contain_text("Session already in progress")
    page.click("#btn-stop")
    expect()(page.locator("#result-session")).to_contain_text("stopping")
    expect()(page.locator("#banner")).to_contain_text("stop requested", timeout=10_000)
    # the only console errors are the browser's own notes on the refused (422) request
    assert all("422" in error for error in page.console_log.errors), page.console_log.errors


def test_thirty_minutes_of_samples_draw_decimated_in_bounded_memory(dashboard) -> None:
    # The redraw time itself is a benchmark figure (bench/bench_dashboard_chart.py), not an assertion here.
    page = dashboard
    result = page.evaluate("""async () => {
        const { charts, recorder } = window.dashboard;
        const samples = [];
        for (let i = 0; i < 9000; i++) {  // 30 minutes at 5 samples/s
            const t = i * 0.2;
            samples.push({ t_s: t, voltage_V: 400 + 10 * Math.sin(t / 60), ev_target_V: 420, supply_V: 401 });
        }
        const chart = charts.voltage;
        chart.setSamples(samples);
        chart.setWindow(null);
        chart.draw();
        const drawn = Number(chart.canvas.dataset.drawn);
        const width = chart.canvas.clientWidth;
        // the recorder keeps a 2-hour session at 5/s bounded
        const { SessionRecorder, MAX_SAMPLES } = await import('/dashboard/assets/recorder.js');
        const long = new SessionRecorder();
        const status = { session_id: 'x', session_active: true, stage: 'charging', phase: 'CHARGING', time_s: 0 };
        for (let i = 0; i < 36000; i++) {
            long.record({ status: { ...status, clock_s: i * 0.2, time_s: i * 0.2, voltage: 400, current: 100,
                                    power_W: 40000, energy_Wh: i }, bms: {}, sim: null, session: null });
        }
        const kept = long.get('x').samples;
        return { drawn, width, kept: kept.length, max: MAX_SAMPLES,
                 first: kept[0].t_s, last: kept[kept.length - 1].t_s };
    }""")
    assert result["drawn"] <= 3 * 4 * result["width"], result  # decimated to ≤ 4 points per pixel column
    assert result["kept"] <= result["max"] and result["first"] == 0 and result["last"] == pytest.approx(7199.8)


@pytest.mark.skipif(os.environ.get("CCS_SIM_UPDATE_SCREENSHOT") != "1",
                    reason="set CCS_SIM_UPDATE_SCREENSHOT=1 to regenerate docs/screenshots/dashboard.png")
def test_screenshot_of_a_charging_session(dashboard, live_server) -> None:
    page = dashboard
    wait_until_idle(page, live_server)
    page.request.post(f"{live_server.url}/sim/car", data={"preset": "ev_small", "start_soc": 20, "target_soc": 80})
    start_from_page(page, target_voltage="400", initial_current="125", duration_s="600", ev_preset="ev_small",
                    start_soc="20", target_soc="80")
    expect()(page.locator("#phase")).to_have_text("CHARGING", timeout=10_000)
    page.wait_for_timeout(9_000)
    page.mouse.move(0, 0)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#btn-stop")
    assert SCREENSHOT.stat().st_size > 50_000
