#!/usr/bin/env bash
# Create .venv at the repository root and install what is missing.
#   scripts/setup.sh            core (API + simulated charger)
#   scripts/setup.sh test       core + test tools
#   scripts/setup.sh hlc        + the ISO 15118 stack (iso15118 --no-deps, pyslac), and a JRE when run as root
#   scripts/setup.sh lint       + the pinned linter and type checker (ruff, mypy)
# Idempotent: a stamp per extra records the hash of pyproject.toml and this script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
venv="$root/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

fingerprint="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
want_extras=("core")
for arg in "$@"; do want_extras+=("$arg"); done

install_extra() {
    local extra="$1" stamp="$venv/.installed-$1"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then return 0; fi
    echo "setup: installing '$extra'"
    case "$extra" in
        core) "$venv/bin/pip" install --quiet -e . ;;
        test) "$venv/bin/pip" install --quiet -e '.[test]' ;;
        lint) "$venv/bin/pip" install --quiet -e '.[lint]' ;;
        hlc)
            "$venv/bin/pip" install --quiet -e '.[hlc]'
            # iso15118 0.31.2 pins pydantic==1.10.21 and cryptography==44.0.0; we run it on pydantic v2
            # through evse_hal.iso15118.compat (pydantic.v1 import hook), so it goes in without its pins.
            "$venv/bin/pip" install --quiet --no-deps 'iso15118==0.31.2'
            # pyslac 0.8.3 pins environs<10 (which breaks on marshmallow 4); it works with the
            # environs iso15118 needs, so it too goes in without its pins.
            "$venv/bin/pip" install --quiet --no-deps 'pyslac==0.8.3'
            # A JRE serves `--exi-codec java`, the simulated EV's default codec and the codec's differential
            # tests; the launcher's default (native) codec needs none.
            "$root/scripts/install-system-deps.sh" java || \
                echo "setup: no Java runtime: fine for evse-main (native EXI codec); needed for --exi-codec java" >&2
            ;;
        *) echo "setup: unknown extra '$extra' (known: core test hlc lint)" >&2; exit 2 ;;
    esac
    echo "$fingerprint" > "$stamp"
}
for extra in "${want_extras[@]}"; do install_extra "$extra"; done
