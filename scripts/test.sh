#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs lint, types and
# every test. Usage: ./scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Chromium and Firefox ESR for the browser tests, espeak-ng and sox for test
# speech, iproute2 and nftables (network namespaces for the ICE privacy and ICE-TCP tests,
# random UDP loss inside a namespace: tests/network/test_loss.py, bench/loss.py), coturn (the
# TURN tests start their own turnserver on a free port), and Node.js/npm (the interop tests
# run @fedify/fedify, the Firefox tests puppeteer-core) when npm is missing.
SYSTEM_PACKAGES=(chromium firefox-esr espeak-ng sox iproute2 nftables coturn redis-server)
command -v npm >/dev/null 2>&1 || SYSTEM_PACKAGES+=(nodejs npm)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "installing system packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
    # Under systemd, installing coturn enables and starts a system-wide turnserver on port
    # 3478 (without systemd, Debian's init script starts it only with TURNSERVER_ENABLED=1
    # in /etc/default/coturn). The tests need none: stop and disable the one we installed.
    if [[ " ${missing[*]} " == *" coturn "* ]] && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now coturn.service || true
    fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Interop tests (tests/interop/): @fedify/fedify from its committed lock file, and bovine in
# a venv of its own (it pins an older cryptography than Salon's).
if [ ! -d tests/interop/fedify/node_modules ] \
    || [ tests/interop/fedify/package-lock.json -nt tests/interop/fedify/node_modules ]; then
    (cd tests/interop/fedify && npm ci --no-audit --no-fund --loglevel=error)
fi
# Firefox browser tests (tests/browser/firefox/): puppeteer-core from its committed lock file;
# it drives Debian's firefox-esr, so no browser download.
if [ ! -d tests/browser/firefox/node_modules ] \
    || [ tests/browser/firefox/package-lock.json -nt tests/browser/firefox/node_modules ]; then
    (cd tests/browser/firefox \
        && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
[ -x tests/interop/.bovine-venv/bin/python ] || "$PYTHON" -m venv tests/interop/.bovine-venv
tests/interop/.bovine-venv/bin/python -m pip install -q --disable-pip-version-check 'bovine==0.5.19'

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"
