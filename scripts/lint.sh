#!/usr/bin/env bash
# Lint (ruff) and type-check (mypy) the product code under src/ with the pinned tools of the 'lint' extra.
# Configuration: [tool.ruff] and [tool.mypy] in pyproject.toml. Exit status non-zero on any finding.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh test hlc lint
echo "lint: ruff check src bench"
"$root/.venv/bin/ruff" check src bench
echo "lint: mypy (src/)"
"$root/.venv/bin/mypy"
