#!/usr/bin/env bash
# Run the whole test suite (creates .venv and installs what the tests need on first use).
# Under CI=true as root it also installs the system packages the namespace, HLC and browser tests need,
# so those run instead of skipping. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh test hlc
if [ "${CI:-}" = "true" ]; then
    # CI runs as root: what the namespace, interoperability and browser tests need.
    scripts/install-system-deps.sh java netns chromium pki
fi
exec "$root/.venv/bin/python" -m pytest "$@"
