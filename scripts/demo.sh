#!/usr/bin/env bash
# One-command demo: the charger (SLAC + ISO 15118 SECC + Live Controller API on the simulated HAL) and a
# simulated 800 V car in two network namespaces joined by a veth pair; charges 10 % -> 80 % with a progress
# display, prints the session summary and cleans up (also on Ctrl+C). Needs root (network namespaces).
#
#   sudo scripts/demo.sh [--full-pack] [--protocol DIN_SPEC_70121|ISO_15118_2|ISO_15118_20_DC]
#
# It installs what it needs on first use (scripts/setup.sh hlc: iso15118, pyslac, a JRE).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
if [[ $EUID -ne 0 ]]; then
    echo "demo: needs root: it creates two network namespaces and a veth pair (the charging cable)." >&2
    echo "      run: sudo scripts/demo.sh" >&2
    exit 2
fi
if [[ -z "${PYTHON:-}" ]]; then
    "$repo/scripts/setup.sh" hlc   # creates .venv and installs iso15118, pyslac and a JRE when missing
    "$repo/scripts/install-system-deps.sh" netns
fi
exec "$python" -m evse_ev.demo "$@"
