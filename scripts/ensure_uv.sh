#!/bin/sh
# Print the path of a uv executable, installing uv first when there is none.
# Progress goes to stderr: the Makefile reads the path from stdout.
set -eu

TOOLS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/huiyuan-loyalty/uv-venv"
USER_UV="$HOME/.local/bin/uv"

works() { [ -n "$1" ] && "$1" --version >/dev/null 2>&1; }

# `--version` rather than `-x`: a pyenv shim exists even where it cannot run uv.
for candidate in "$(command -v uv 2>/dev/null || true)" "$USER_UV" "$TOOLS_VENV/bin/uv"; do
    if works "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done

echo "uv not found: installing it" >&2
PYTHON="$(command -v python3.11 || command -v python3)"
# pip --user and pipx put uv in ~/.local/bin, which need not be on PATH: print the full path.
if "$PYTHON" -m pip install --user --quiet uv >&2 && works "$USER_UV"; then
    echo "$USER_UV"
elif command -v pipx >/dev/null 2>&1 && pipx install uv >&2 && works "$USER_UV"; then
    echo "$USER_UV"
elif "$PYTHON" -m venv "$TOOLS_VENV" >&2 && "$TOOLS_VENV/bin/python" -m pip install --quiet uv >&2; then
    # A Python that is "externally managed" (PEP 668) and has no pipx: a private venv.
    echo "$TOOLS_VENV/bin/uv"
else
    echo "could not install uv: install it (https://docs.astral.sh/uv/) and retry" >&2
    exit 1
fi
