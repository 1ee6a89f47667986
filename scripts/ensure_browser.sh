#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver when missing; does nothing when present.
#
# The browser tests (tests/conftest.py's `browser` fixture) drive $CHROMIUM through
# $CHROMEDRIVER, /usr/bin/chromium and /usr/bin/chromedriver when unset. `make test`
# runs this before pytest, so that a fresh Debian machine needs nothing by hand.
set -euo pipefail
# Found as conftest.py finds them (shutil.which): the variable if set, else Debian's
# path; a bare name is looked up on PATH.
chromium=${CHROMIUM-/usr/bin/chromium}
chromedriver=${CHROMEDRIVER-/usr/bin/chromedriver}
find_missing() {
  missing=()
  for path in "$chromium" "$chromedriver"; do command -v "$path" >/dev/null || missing+=("$path"); done
}
find_missing
[ ${#missing[@]} = 0 ] && exit 0

cannot() {
  echo "error: ${missing[*]} not found (the browser tests drive them), and $1:" \
    "run apt-get install chromium chromium-driver as root, or set CHROMIUM and CHROMEDRIVER to existing binaries" >&2
  exit 1
}
# Root, or sudo without a password: a prompt would hang CI, so never ask for one.
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  cannot "this is not root (nor has passwordless sudo) to install them"
fi
command -v apt-get >/dev/null || cannot "there is no apt-get here to install them"

# Both packages, always: a chromedriver drives only the chromium of its own version.
echo "installing chromium chromium-driver (the browser tests drive them)"
"${as_root[@]}" apt-get update -qq
# Through env, as sudo would drop a plain DEBIAN_FRONTEND=... prefix.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
find_missing
if [ ${#missing[@]} != 0 ]; then  # apt-get installs to /usr/bin, not to a CHROMIUM set elsewhere
  echo "error: ${missing[*]} still not found after installing chromium chromium-driver:" \
    "set CHROMIUM and CHROMEDRIVER to existing binaries" >&2
  exit 1
fi
