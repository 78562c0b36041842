#!/usr/bin/env bash
# Create .venv-evcc at the repository root: the test EV (the stock iso15118 EVCC simulator, unmodified)
# in its OWN environment with the package's own pinned dependencies (pydantic 1.10, cryptography 44),
# separate from .venv where our code runs iso15118 on pydantic v2.
#   scripts/setup-evcc.sh          create or complete .venv-evcc; prints nothing when already done
# The EVCC needs `aiofile`, which iso15118 0.31.2 forgets to declare (upstream issue #167), and Java
# (the EXI codec) at run time: scripts/install-system-deps.sh java.
# Idempotent: a stamp records the hash of this script; delete .venv-evcc to rebuild.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
venv="$root/.venv-evcc"
stamp="$venv/.installed-evcc"
fingerprint="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then exit 0; fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-evcc: creating $venv"
    "$python" -m venv "$venv"
fi
echo "setup-evcc: installing iso15118==0.31.2 with its pinned dependencies (+ aiofile)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'iso15118==0.31.2' aiofile
"$venv/bin/python" -c "import iso15118.evcc.main" # fails here, not in a test, if the env is broken
echo "$fingerprint" > "$stamp"
