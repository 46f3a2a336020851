#!/usr/bin/env bash
# bench/startup.sh — the CLI's start-up against a minimal Go program. Builds `inject` as the
# README does (CGO_ENABLED=0 go build) and `package main; func main() {}` with the same
# toolchain and flags, then runs `inject --help` and the minimal program alternately, RUNS
# times each (so both see the same moments of a shared machine), and prints the median wall
# time of each and their difference. Wall time comes from bash's EPOCHREALTIME (no process is
# forked to read the clock). Also prints the binaries' sizes and the start-up cost of the
# module's own package initialisation (GODEBUG=inittrace=1).
#
#   bash bench/startup.sh [RUNS]        (default 301)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-301}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
mkdir "$work/min"
printf 'package main\n\nfunc main() {}\n' >"$work/min/main.go"
(cd "$work/min" && CGO_ENABLED=0 go build -o "$work/minimal" main.go)

inj=() min=()
for _ in $(seq "$runs"); do
	t0=${EPOCHREALTIME/./}
	"$work/inject" --help >/dev/null
	t1=${EPOCHREALTIME/./}
	"$work/minimal" >/dev/null
	t2=${EPOCHREALTIME/./}
	inj+=($((t1 - t0)))
	min+=($((t2 - t1)))
done
median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'; }
mi=$(printf '%s\n' "${inj[@]}" | median)
mm=$(printf '%s\n' "${min[@]}" | median)
printf '%-22s %10s %12s\n' program median_ms size_bytes
printf '%-22s %10s %12s\n' "inject --help" "$mi" "$(stat -c %s "$work/inject")"
printf '%-22s %10s %12s\n' "minimal Go program" "$mm" "$(stat -c %s "$work/minimal")"
printf '%-22s %10s\n' "difference" "$(awk -v a="$mi" -v b="$mm" 'BEGIN{printf "%.2f", a-b}')"
GODEBUG=inittrace=1 "$work/inject" --help 2>&1 >/dev/null |
	awk '/^init github.com\/guestinject\/guestinject\// || /^init main / {ms += $5; b += $8; n++}
	/^init / {all += $5}
	END {printf "package init: all %.3f ms; the module'"'"'s %d packages %.3f ms, %d bytes allocated\n", all, n, ms, b}'
uptime
