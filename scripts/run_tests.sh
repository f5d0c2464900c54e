#!/usr/bin/env bash
# Install everything the test suite needs, then run it (CPU only).
#
#   bash scripts/run_tests.sh            # the fast tier: every test not marked slow
#   bash scripts/run_tests.sh --all      # the whole suite, slow tests too (torchrun, kill and resume, exports); CI runs this
#   bash scripts/run_tests.sh -k visdom  # other pytest arguments pass through
#
# Needs, besides requirements.txt: Debian's chromium + chromium-driver (page tests) and
# npm (to provision Visdom's JavaScript offline). As root they are installed here;
# otherwise the browser tests skip with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (Debian packages)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed (sudo apt-get install ${missing[*]}); the tests that need them will skip"
  fi
fi
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python scripts/provision_visdom.py
fi
tier=(-m "not slow")
args=()
for arg in "$@"; do
  if [ "$arg" = "--all" ]; then tier=(); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest -q "${tier[@]}" "${args[@]}"
