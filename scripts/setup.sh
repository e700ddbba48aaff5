#!/usr/bin/env bash
# One-time set-up, safe to re-run: Debian packages for a virtual X server (as
# root only), a virtual environment in .venv with the CPU build of torch and
# this project (editable, with test tools). Re-installs only when
# pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 libgl1 \
libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libfontconfig1 libdbus-1-3"
TORCH_PIN="torch==2.13.0"   # the CPU wheel available on our machines; pyproject says torch>=2.2

missing=""
for pkg in $SYSTEM_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    else
        echo "setup: napari's tests need these Debian packages:$missing" >&2
        echo "setup: install them with: sudo apt-get install$missing" >&2
    fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.movierecon-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing $TORCH_PIN and napari-movierecon[pyqt6,dev] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first in the same call, so pip never resolves a multi-GB CUDA build.
    .venv/bin/python -m pip install -q "$TORCH_PIN" -e ".[pyqt6,dev]"
    echo "$want" > "$stamp"
fi
