#!/usr/bin/env bash
# Set up lbp-imaging on a fresh machine: Java 17+ (for HermiT and Spark), Debian's Chromium
# (for the web-page tests) and a virtualenv in .venv with the package, its development tools
# and the spark extra (pyspark: its first install builds a wheel, a few minutes).
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
    echo "setup: installing a Java runtime (HermiT needs Java 17 or newer)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# Debian's Chromium for the web-page tests (Playwright drives it through executable_path;
# no browser download of Playwright's own).
if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing Chromium (the web-page tests drive it headless)" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,spark]'
echo "setup: ready ($(.venv/bin/python --version), Java $(java_major))" >&2
