#!/usr/bin/env bash
# bench/qcow2.sh — the nova payload (one SSH key, an --ip interface, metadata, a root password and
# three files) injected by the built CLI into
#   raw      a sparse 1 TiB raw image holding one ext4 filesystem,
#   qcow2    the same disk as a 1 TiB qcow2 (qemu-img convert),
#   overlay  a new qcow2 overlay on that qcow2, made by `inject --overlay` (the nova flow: the
#            overlay's creation is inside the timing, the base is never written).
# Every run starts from a fresh `cp --sparse=always` of the pristine image (or, for the overlay,
# with the previous overlay removed), outside the timing. Prints the median wall time of RUNS
# runs, the peak RSS (GNU time's %M) of one more run, start-up included, and the ratio to raw;
# the targets are < 10 ms median, < 16 MiB peak RSS, and qcow2 within 1.5x of raw. Each result is
# checked once: qemu-img check (qcow2 and overlay) and e2fsck -fn on the filesystem.
# These machines are shared and noisy: compare ratios within one run.
#
#   bash bench/qcow2.sh [RUNS]        (default 21)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-21}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
TIMEFMT=/usr/bin/time
[ -x "$TIMEFMT" ] || { echo "GNU time (Debian package time) is needed for peak RSS" >&2; exit 1; }

# The guest: the demo guest with Debian's modes.
src=$work/src
cp -R fixtures/demo-guest "$src"
chmod 0640 "$src/etc/shadow"
chmod 0700 "$src/root"

# The payload's local inputs.
in=$work/in
mkdir -p "$in"
printf 'Welcome.\n' >"$in/motd"
head -c 9000 /dev/urandom | base64 >"$in/config.json"
head -c 700 /dev/urandom | base64 >"$in/hello"
payload=(--key fixtures/demo-key.pub --ip 'eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53'
	--meta role=web --meta owner=ops --root-password 'password:s3cret pass'
	--file /etc/motd="$in/motd" --file /opt/app/conf/config.json="$in/config.json"
	--file /usr/local/bin/hello="$in/hello")

# The pristine images.
truncate -s 1T "$work/pristine.raw"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -d "$src" "$work/pristine.raw"
qemu-img convert -q -f raw -O qcow2 "$work/pristine.raw" "$work/pristine.qcow2"
cp --sparse=always "$work/pristine.qcow2" "$work/base.qcow2"

# prepare CASE: the fresh target of one run; target CASE: what to run on.
prepare() {
	case $1 in
	raw) cp --sparse=always "$work/pristine.raw" "$work/t.raw" ;;
	qcow2) cp --sparse=always "$work/pristine.qcow2" "$work/t.qcow2" ;;
	overlay) rm -f "$work/vm.qcow2" ;;
	esac
	sync
}
args() {
	case $1 in
	raw) echo "$work/t.raw" ;;
	qcow2) echo "$work/t.qcow2" ;;
	overlay) echo "--overlay $work/vm.qcow2 $work/base.qcow2" ;;
	esac
}
result() {
	case $1 in
	raw) echo "$work/t.raw" ;;
	qcow2) echo "$work/t.qcow2" ;;
	overlay) echo "$work/vm.qcow2" ;;
	esac
}

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'; }

# check CASE: the last result is clean for qemu-img check and e2fsck -fn.
check() {
	local img flat
	img=$(result "$1")
	flat=$img
	if [ "$1" != raw ]; then
		qemu-img check -q "$img" || { echo "$1: qemu-img check failed" >&2; exit 1; }
		flat=$work/flat.raw
		rm -f "$flat"
		qemu-img convert -q -O raw "$img" "$flat"
	fi
	if ! e2fsck -fn "$flat" >"$work/fsck.out" 2>&1; then
		echo "$1 left an unclean filesystem:" >&2
		cat "$work/fsck.out" >&2
		exit 1
	fi
	[ "$flat" = "$img" ] || rm -f "$flat"
}

# timed CMD...: runs CMD, prints "wall_ms cpu_ms" (bash's time: real, and
# user+sys of the child from getrusage, both to the millisecond).
timed() {
	local TIMEFORMAT='%3R %3U %3S' out
	out=$({ time "$@" >/dev/null 2>&1; } 2>&1)
	awk '{printf "%d %d\n", $1 * 1000000, ($2 + $3) * 1000000}' <<<"$out"
}

# bench CASE: median wall and CPU ms over $runs runs, then the peak RSS
# (KiB) of one more.
bench() {
	local walls=() cpus=() w c rss
	for _ in $(seq "$runs"); do
		prepare "$1"
		# shellcheck disable=SC2046 # args are paths without spaces (mktemp)
		read -r w c <<<"$(timed "$work/inject" "${payload[@]}" $(args "$1"))"
		walls+=("$w")
		cpus+=("$c")
	done
	prepare "$1"
	# shellcheck disable=SC2046
	rss=$("$TIMEFMT" -f %M "$work/inject" "${payload[@]}" $(args "$1") 2>&1 >/dev/null | tail -1)
	check "$1"
	printf '%s %s %s' "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" "$rss"
}

# startup: the median ms of `inject --help` (process start, no image), the
# floor every row includes; on a loaded machine it dominates.
startup() {
	local walls=() cpus=() w c
	for _ in $(seq "$runs"); do
		read -r w c <<<"$(timed "$work/inject" --help)"
		walls+=("$w")
		cpus+=("$c")
	done
	printf '%s %s' "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)"
}

verdict() { awk -v ms="$1" -v rss="$2" -v ratio="$3" 'BEGIN {
	v = (ms < 10 && rss < 16384 && ratio <= 1.5) ? "ok" : "MISSED";
	print v }'; }

read -r base_ms base_cpu <<<"$(startup)"
printf '%-8s %8s %8s %13s %8s %7s %7s  %s\n' case wall_ms cpu_ms wall-startup rss_kib vs_raw cpu_vs "target: <10 ms, <16384 KiB, <=1.5x raw"
printf '%-8s %8s %8s %13s %8s %7s %7s\n' startup "$base_ms" "$base_cpu" - - - -
raw_ms= raw_cpu=
for c in raw qcow2 overlay; do
	read -r ms cpu rss <<<"$(bench "$c")"
	[ -n "$raw_ms" ] || { raw_ms=$ms; raw_cpu=$cpu; }
	ratio=$(awk -v a="$ms" -v b="$raw_ms" 'BEGIN {printf "%.2f", a / b}')
	cratio=$(awk -v a="$cpu" -v b="$raw_cpu" 'BEGIN {printf "%.2f", a / b}')
	net=$(awk -v a="$ms" -v b="$base_ms" 'BEGIN {printf "%.2f", a - b}')
	printf '%-8s %8s %8s %13s %8s %6sx %6sx  %s\n' "$c" "$ms" "$cpu" "$net" "$rss" "$ratio" "$cratio" "$(verdict "$ms" "$rss" "$ratio")"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs)"
echo "(1 TiB virtual; $runs runs each; file sizes: raw $(du -h "$work/pristine.raw" | cut -f1), qcow2 $(du -h "$work/pristine.qcow2" | cut -f1))"
