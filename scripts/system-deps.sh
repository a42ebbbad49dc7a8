#!/usr/bin/env bash
# What pip cannot install, for `make setup` (and so `make test`, `make report`) and CI:
#   chromium        prints the report's PDF; drives the JupyterLab browser test
#   fonts-noto-cjk  the Chinese text in that PDF (the mplfonts wheel is the fallback)
#   poppler-utils   pdftotext / pdftoppm, to check and look at the PDF
# Installed with the system's package manager where this user may: root with apt-get, or
# sudo without a password. Elsewhere it prints one line saying what to install and exits 0:
# `make report` still writes the HTML and the tests that need a PDF are skipped with that reason.
# CNN_LAB_SYSTEM_DEPS=skip turns the install off (the check and the line remain).
set -u

missing=()
chromium_found() {
  [ -n "${CNN_LAB_CHROMIUM:-}" ] && return 0
  for n in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$n" >/dev/null 2>&1 && return 0
  done
  return 1
}
chromium_found || missing+=(chromium)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
[ ${#missing[@]} -eq 0 ] && exit 0

hint="Debian/Ubuntu: sudo apt-get install ${missing[*]}; or point CNN_LAB_CHROMIUM at a Chrome/Chromium"
if [ "${CNN_LAB_SYSTEM_DEPS:-}" = skip ]; then
  echo "setup: not installing ${missing[*]} (CNN_LAB_SYSTEM_DEPS=skip): the PDF and browser tests will be skipped ($hint)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing ${missing[*]} (no apt-get here): install Chromium, Noto Sans CJK fonts and poppler with your package manager, or the PDF and browser tests will be skipped"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup: missing ${missing[*]}; this user cannot install them ($hint); the PDF and browser tests will be skipped"
  exit 0
fi
echo "setup: installing ${missing[*]} with apt-get"
if "${as_root[@]}" apt-get update -qq >/dev/null 2>&1 &&
   DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  exit 0
fi
echo "setup: apt-get could not install ${missing[*]} ($hint); the PDF and browser tests will be skipped"
exit 0
