#!/usr/bin/env bash
# The command-line tools the tests run besides the services (Debian packages, installed with
# apt-get when missing; the tests fail without them rather than skip):
#
#   graphviz   `dot`: every example's `etlc explain --format dot` must render
#   chromium   headless: the `etlc explain --format html` page must open, its DOM checked
#
# Usage: scripts/tools.sh   (needs root when something is missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"

say() { printf 'tools: %s\n' "$*"; }
die() {
	printf 'tools: %s\n' "$*" >&2
	exit 1
}

missing=()
command -v dot >/dev/null || missing+=(graphviz)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]} == 0)); then
	exit 0
fi
[[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root (apt-get); run as root or install them"
mkdir -p "$STATE"
say "installing ${missing[*]} with apt-get (log: $STATE/apt.log)"
export DEBIAN_FRONTEND=noninteractive
if ! timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1; then
	timeout 600 apt-get update -q >>"$STATE/apt.log" 2>&1 || true
	timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1 ||
		die "apt-get install ${missing[*]} failed; see $STATE/apt.log"
fi
