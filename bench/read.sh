#!/usr/bin/env bash
# bench/read.sh — how opening an ext4 image and reading /etc/passwd scales with the
# filesystem's size. Builds sparse ext4 images of 1 GiB, 20 GiB and 1 TiB (mkfs.ext4 -d from
# a tiny tree; the 1 TiB one takes a few seconds and a few hundred MiB of real disk), then runs
# `inject cat IMAGE /etc/passwd` RUNS times on each and prints the median wall time and the peak
# RSS (GNU time's %M) of one process, start-up included. Compare ratios within one run: these
# machines are shared and noisy.
#
#   bash bench/read.sh [RUNS]        (default 51)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-51}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
mkdir -p "$work/src/etc"
printf 'root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000::/home/debian:/bin/bash\n' >"$work/src/etc/passwd"
printf 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n' >"$work/src/etc/os-release"
TIMEFMT=/usr/bin/time
[ -x "$TIMEFMT" ] || { echo "GNU time (Debian package time) is needed for peak RSS" >&2; exit 1; }
median_of() { # median wall time in microseconds of RUNS runs of "$@"
	local times=() t0 t1
	for _ in $(seq "$runs"); do
		t0=$(date +%s%N)
		"$@" >/dev/null
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000)))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
printf '%-8s %12s %14s\n' size median_ms peak_rss_kib
floor=$(median_of "$work/inject" --help)
printf '%-8s %12.2f %14s   (process start-up floor: inject --help)\n' "-" "$(awk -v m="$floor" 'BEGIN{print m/1000}')" "-"
for size in 1G 20G 1T; do
	img="$work/$size.img"
	truncate -s "$size" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -d "$work/src" "$img"
	sync
	"$work/inject" cat "$img" /etc/passwd >/dev/null # warm the page cache
	median=$(median_of "$work/inject" cat "$img" /etc/passwd)
	rss=$("$TIMEFMT" -f %M "$work/inject" cat "$img" /etc/passwd 2>&1 >/dev/null | tail -1)
	printf '%-8s %12.2f %14s\n' "$size" "$(awk -v m="$median" 'BEGIN{print m/1000}')" "$rss"
	rm -f "$img"
done
