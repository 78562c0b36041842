#!/usr/bin/env bash
# Run the whole test suite (creates .venv and installs what the tests need on first use).
# Under CI=true as root it also installs the system packages the namespace, HLC and browser tests need,
# so those run instead of skipping. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras=(test)
if [ "${CI:-}" = "true" ] || [ "${CCS_SIM_TEST_HLC:-}" = "1" ]; then
    extras+=(hlc)
    if [ "$(id -u)" -eq 0 ]; then scripts/install-system-deps.sh netns chromium; fi
fi
scripts/setup.sh "${extras[@]}"
exec "$root/.venv/bin/python" -m pytest "$@"
