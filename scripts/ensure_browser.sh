#!/usr/bin/env bash
# The UI's end-to-end tests drive Debian's Chromium through Playwright; the browser comes from
# the Debian registry (never Playwright's own download, which is unreachable here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing Debian's chromium for the browser tests…"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
