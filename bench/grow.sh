#!/usr/bin/env bash
# bench/grow.sh — growing a 2 GiB guest to 1 TiB, offline:
#   inject-raw      `inject --grow` on a sparse raw image of one 2 GiB ext4 filesystem (the demo
#                   guest) extended in place to 1 TiB with truncate(1),
#   resize2fs-raw   the same image and extension, then `resize2fs` (e2fsprogs' offline resize,
#                   lazy inode table initialisation forced so it also writes only metadata),
#   inject-overlay  `inject --overlay vm.qcow2 --size 1T --grow` on a 2 GiB GPT qcow2 of the same
#                   guest (overlay creation, GPT growth and ext4 growth in one run),
#   qemu-img-resize `qemu-img resize` of a copy of that qcow2 to 1 TiB (what nova does before
#                   resize2fs; the partition and filesystem growth still need a block device).
# Every run starts from a fresh `cp --sparse=always` of the pristine image outside the timing.
# Prints the median wall time of RUNS runs and the peak RSS (GNU time's %M) of one more run; each
# result is checked once (e2fsck -fn; qemu-img check and sgdisk -v for the overlay), and the raw
# results' dumpe2fs layouts (checksums and times aside) are compared.
#
#   bash bench/grow.sh [RUNS]        (default 11)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
TIMEFMT=/usr/bin/time
[ -x "$TIMEFMT" ] || { echo "GNU time (Debian package time) is needed for peak RSS" >&2; exit 1; }

src=$work/src
cp -R fixtures/demo-guest "$src"
truncate -s 2G "$work/fs.raw"
mkfs.ext4 -q -F -d "$src" "$work/fs.raw"
truncate -s 2G "$work/disk.raw"
sgdisk -n1:2048:0 "$work/disk.raw" >/dev/null
mkfs.ext4 -q -F -E offset=1048576 -d "$src" "$work/disk.raw" $(((2 * 1024 * 1024 - 1024 - 17) ))k
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$work/base.qcow2"

prepare() {
	case $1 in
	inject-raw | resize2fs-raw) cp --sparse=always "$work/fs.raw" "$work/t.raw" && truncate -s 1T "$work/t.raw" ;;
	inject-overlay) rm -f "$work/vm.qcow2" ;;
	qemu-img-resize) cp --sparse=always "$work/base.qcow2" "$work/t.qcow2" ;;
	esac
	sync
}
cmd() {
	case $1 in
	inject-raw) echo "$work/inject --grow $work/t.raw" ;;
	resize2fs-raw) echo "env RESIZE2FS_FORCE_LAZY_ITABLE_INIT=1 resize2fs -f $work/t.raw" ;;
	inject-overlay) echo "$work/inject --overlay $work/vm.qcow2 --size 1T --grow $work/base.qcow2" ;;
	qemu-img-resize) echo "qemu-img resize -q $work/t.qcow2 1T" ;;
	esac
}
layout() { dumpe2fs "$1" 2>/dev/null | sed -E 's/,? ?(csum|checksum) 0x[0-9a-f]+//g' | grep -vE 'time:|UUID|Last |created|Checksum|Hash Seed|Lifetime'; }

printf '%-16s %12s %14s\n' case median peak-RSS
for c in inject-raw resize2fs-raw inject-overlay qemu-img-resize; do
	ts=()
	for ((i = 0; i < runs; i++)); do
		prepare $c
		s=$(date +%s%N)
		$(cmd $c) >/dev/null 2>&1
		e=$(date +%s%N)
		ts+=($(((e - s) / 1000)))
	done
	prepare $c
	rss=$($TIMEFMT -f %M $(cmd $c) 2>&1 >/dev/null | tail -1)
	med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
	printf '%-16s %9d.%01d ms %10d KiB\n' $c $((med / 1000)) $((med % 1000 / 100)) "$rss"
	case $c in
	inject-raw | resize2fs-raw)
		e2fsck -fn "$work/t.raw" >/dev/null 2>&1 || { echo "$c: e2fsck -fn failed" >&2; exit 1; }
		layout "$work/t.raw" >"$work/$c.layout" ;;
	inject-overlay)
		qemu-img check -q "$work/vm.qcow2" || { echo "$c: qemu-img check failed" >&2; exit 1; }
		qemu-img convert -q -O raw "$work/vm.qcow2" "$work/vm.raw"
		sgdisk -v "$work/vm.raw" | grep -q 'No problems found' || { echo "$c: sgdisk -v failed" >&2; exit 1; }
		e2fsck -fn "$work/vm.raw?offset=1048576" >/dev/null 2>&1 || { echo "$c: e2fsck -fn failed" >&2; exit 1; }
		rm -f "$work/vm.raw" ;;
	esac
done
if cmp -s "$work/inject-raw.layout" "$work/resize2fs-raw.layout"; then
	echo "dumpe2fs layouts of inject --grow and resize2fs: identical"
else
	echo "dumpe2fs layouts differ:" && diff "$work/inject-raw.layout" "$work/resize2fs-raw.layout" | head
	exit 1
fi
