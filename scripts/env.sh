# Sourced by scripts/serve and scripts/test: installs exactly what uv.lock pins (talkd itself editable)
# into $VENV (default .venv, or TALKD_VENV). uv comes from PATH, or is installed once with pip into a
# small tool venv beside the checkout's venv. `uv sync --frozen` never re-resolves: a dependency
# change means editing pyproject.toml and running `uv lock` (then committing uv.lock).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TALKD_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-speed}"
UV_VERSION=0.13.9
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  UV_TOOL="${TALKD_UV_TOOL:-$ROOT/.uv-tool}"
  if [ ! -x "$UV_TOOL/bin/uv" ]; then
    echo "talkd: installing uv $UV_VERSION into $UV_TOOL" >&2
    "$PYTHON" -m venv "$UV_TOOL"
    "$UV_TOOL/bin/python" -m pip install -qq --disable-pip-version-check "uv==$UV_VERSION"
  fi
  UV="$UV_TOOL/bin/uv"
fi
# CI also checks that uv.lock still matches pyproject.toml (--locked); elsewhere it is taken as it is.
lock_mode=--frozen
[ "${CI:-}" = true ] && lock_mode=--locked
sync=("$UV" sync "$lock_mode" --quiet --project "$ROOT" --python "$("$PYTHON" -c 'import sys; print(sys.executable)')")
for extra in ${EXTRAS//,/ }; do sync+=(--extra "$extra"); done
# The test set is installed exactly (extraneous packages removed); serving only adds what it lacks, so
# `scripts/serve` after `scripts/test` does not uninstall the test tools.
case ",$EXTRAS," in *,test,*) ;; *) sync+=(--inexact) ;; esac
UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never "${sync[@]}"
