#!/usr/bin/env bash
# Serve the Live Controller API with the simulated charger on http://127.0.0.1:8000
# (creates .venv and installs on first use). Extra arguments go to `ccs-sim serve`, e.g. --speed 10.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
exec "$root/.venv/bin/ccs-sim" serve "$@"
