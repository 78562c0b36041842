#!/usr/bin/env bash
# Create .venv-csms at the repository root: `ocpp-csms` (PyPI, AGPL-3.0-or-later, an OCPP 1.6J central system that
# prints what it receives), the black-box CSMS peer of tests/ocpp/test_ocpp_csms_peer.py, in its OWN environment:
# it is a test peer run as a separate process, never a dependency of this project.
#   scripts/setup-csms.sh          create or complete .venv-csms; prints nothing when already done
# Idempotent: a stamp records the hash of this script; delete .venv-csms to rebuild.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
venv="$root/.venv-csms"
stamp="$venv/.installed-csms"
fingerprint="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then exit 0; fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-csms: creating $venv"
    "$python" -m venv "$venv"
fi
echo "setup-csms: installing ocpp-csms==0.1.0"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'ocpp-csms==0.1.0'
"$venv/bin/ocpp-csms" --help > /dev/null  # fails here, not in a test, if the env is broken
echo "$fingerprint" > "$stamp"
