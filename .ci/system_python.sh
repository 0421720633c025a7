#!/usr/bin/env bash
# CI: the README's two set-up commands, read from README.md and run verbatim with Debian's own python3
# (/usr/bin/python3, marked externally managed: PEP 668) first on PATH and no environment active, in a copy of
# this checkout; the test command runs the packaging tests only (a short test, so without CI=true: the CI guard
# asks for the whole suite). torch is pinned through pip's
# environment (PIP_CONSTRAINT), as .ci/run pins it with -c, so that the commands themselves stay verbatim.
set -euo pipefail
cd "$(dirname "$0")/.."
system=/usr/bin/python3
marker="$("$system" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED"
[ -f "$marker" ] || { echo "system_python: $system is not externally managed ($marker missing)" >&2; exit 1; }
"$system" -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; }

mapfile -t commands < <(awk '/^## Set-up/{s=1} s&&/^```/{n++; next} s&&n==1' README.md)
[ "${#commands[@]}" = 2 ] || { echo "system_python: README's set-up block is not two commands: ${commands[*]}" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$work"
cd "$work"
run() { env -u VIRTUAL_ENV -u CONDA_PREFIX -u PYTHONPATH -u CI PATH="/usr/bin:/bin" PIP_CONSTRAINT="$work/.ci/constraints.txt" \
          bash -c "$1"; }
echo "system_python: $(${system} --version) from $system; \$ ${commands[0]}"
run "${commands[0]}"
echo "system_python: \$ ${commands[1]} tests/test_packaging.py"
run "${commands[1]} tests/test_packaging.py"
