#!/usr/bin/env bash
# bench/import.sh — importing a 10 GiB mostly-empty disk (an ext4 filesystem of the demo guest,
# made into a qcow2 with qemu-img, then exported as a gzip'd raw image: 10 GiB of which a few
# MiB are data) served over HTTP on 127.0.0.1 (net/http/httptest, bench/importserve):
#   inject-import  `inject import URL --output a.qcow2` (fetch, gunzip, sparse qcow2, in one run),
#   pipeline       `curl URL | gunzip | dd conv=sparse of=t.raw && qemu-img convert -O qcow2 t.raw
#                  b.qcow2` (the classic way; dd conv=sparse keeps the 10 GiB of zeros off the disk).
# Prints the wall time and the peak RSS (GNU time's %M; for the pipeline the largest of its
# processes) of each of RUNS runs, and checks that both outputs compare identical to the source
# (qemu-img compare) and pass qemu-img check.
#
#   bash bench/import.sh [RUNS]        (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv"; rm -rf "$work"' EXIT
TIMEFMT=/usr/bin/time
[ -x "$TIMEFMT" ] || { echo "GNU time (Debian package time) is needed for peak RSS" >&2; exit 1; }
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
go build -o "$work/importserve" ./bench/importserve

truncate -s 10G "$work/fs.raw"
mkfs.ext4 -q -F -d fixtures/demo-guest "$work/fs.raw"
qemu-img convert -q -f raw -O qcow2 "$work/fs.raw" "$work/src.qcow2"
rm "$work/fs.raw"
mkdir "$work/www"
qemu-img convert -q -O raw "$work/src.qcow2" "$work/src.raw"
gzip -1 -c "$work/src.raw" > "$work/www/disk.raw.gz"
rm "$work/src.raw"
echo "source: 10 GiB virtual, qcow2 $(du -k "$work/src.qcow2" | cut -f1) KiB on disk, gzip'd raw $(stat -c %s "$work/www/disk.raw.gz") bytes"
"$work/importserve" "$work/www" > "$work/url" &
srv=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/url" ] && break; sleep 0.2; done
url=$(cat "$work/url")/disk.raw.gz

for i in $(seq "$runs"); do
	rm -f "$work/a.qcow2" "$work/b.qcow2" "$work/t.raw"
	"$TIMEFMT" -f "inject-import %e s %M KiB" "$work/inject" import -q "$url" --output "$work/a.qcow2" 2>&1 | tail -1
	"$TIMEFMT" -f "pipeline      %e s %M KiB" bash -c "curl -s '$url' | gunzip | dd of='$work/t.raw' bs=1M conv=sparse status=none && qemu-img convert -O qcow2 '$work/t.raw' '$work/b.qcow2'" 2>&1 | tail -1
done
qemu-img compare -q "$work/src.qcow2" "$work/a.qcow2" && qemu-img compare -q "$work/a.qcow2" "$work/b.qcow2" && echo "outputs identical to the source"
qemu-img check -q "$work/a.qcow2" && echo "qemu-img check clean"
echo "a.qcow2 $(du -k "$work/a.qcow2" | cut -f1) KiB, b.qcow2 $(du -k "$work/b.qcow2" | cut -f1) KiB on disk"
