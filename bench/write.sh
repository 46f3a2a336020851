#!/usr/bin/env bash
# bench/write.sh — the whole nova payload (one SSH key, a network config, metadata, a root
# password and three files) injected into sparse ext4 images of 1 GiB, 20 GiB and 1 TiB, by the
# built CLI and, side by side, by `debugfs -w -f SCRIPT` making the same writes (the same bytes:
# the files debugfs writes are those the CLI produced in a directory guest, so debugfs is spared
# the password hashing the CLI does). Each run starts from a fresh `cp --sparse=always` of a
# pristine image, synced, outside the timing; the CLI's and debugfs' runs alternate. Prints the
# median wall time of RUNS runs of each and the peak RSS (GNU time's %M) of one run, start-up
# included, checks every result with e2fsck -fn, and ends with the machine's load (uptime).
# Compare ratios within one run: these machines are shared and noisy.
#
# Three more columns measure what the comparison hides, in the same rounds: inject given the
# same input as debugfs (`--root-password hash:HASH`, the hash debugfs' script writes, so no
# hashing: the same bytes on disk), mkpasswd making that kind of hash (sha512-crypt, what a
# debugfs user needs before the script), and a minimal Go program (`func main() {}`: the floor of
# any Go process here).
#
#   bash bench/write.sh [RUNS]        (default 21)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-21}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/inject" ./cmd/inject # as the README builds it
mkdir "$work/min"
printf 'package main\n\nfunc main() {}\n' >"$work/min/main.go"
(cd "$work/min" && CGO_ENABLED=0 go build -o "$work/minimal" main.go)
TIMEFMT=/usr/bin/time
[ -x "$TIMEFMT" ] || { echo "GNU time (Debian package time) is needed for peak RSS" >&2; exit 1; }
command -v mkpasswd >/dev/null || { echo "mkpasswd (Debian package whois) is needed" >&2; exit 1; }

# The guest: the demo guest with Debian's modes and owners.
src=$work/src
cp -R fixtures/demo-guest "$src"
chmod 0640 "$src/etc/shadow"
chmod 0700 "$src/root"
if [ "$(id -u)" = 0 ]; then
	chown 0:42 "$src/etc/shadow"
	chown 1000:1000 "$src/home/debian"
fi

# The payload's local inputs.
in=$work/in
mkdir -p "$in"
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n\taddress 192.0.2.10/24\n\tgateway 192.0.2.1\n' >"$in/interfaces"
printf 'Welcome.\n' >"$in/motd"
head -c 9000 /dev/urandom | base64 >"$in/config.json"
head -c 700 /dev/urandom | base64 >"$in/hello"
payload=(--key fixtures/demo-key.pub --net "$in/interfaces" --meta role=web --meta owner=ops
	--root-password 'password:s3cret pass'
	--file /etc/motd="$in/motd" --file /opt/app/conf/config.json="$in/config.json"
	--file /usr/local/bin/hello="$in/hello")

# The same writes as a debugfs script, with the bytes the CLI writes into a directory guest.
ref=$work/ref
cp -a "$src" "$ref"
"$work/inject" "${payload[@]}" "$ref" >/dev/null
hash=$(awk -F: '$1 == "root" {print $2}' "$ref/etc/shadow")
case $hash in \$6\$*) ;; *) echo "no sha512-crypt hash for root in the reference shadow: $hash" >&2; exit 1 ;; esac
hashed=("${payload[@]}")
for i in "${!hashed[@]}"; do
	[ "${hashed[$i]}" != 'password:s3cret pass' ] || hashed[$i]="hash:$hash"
done
cat >"$work/debugfs.cmds" <<EOF
mkdir /root/.ssh
sif /root/.ssh mode 040700
write $ref/root/.ssh/authorized_keys /root/.ssh/authorized_keys
sif /root/.ssh/authorized_keys mode 0100600
rm /etc/network/interfaces
write $ref/etc/network/interfaces /etc/network/interfaces
sif /etc/network/interfaces mode 0100644
write $ref/meta.js /meta.js
sif /meta.js mode 0100644
rm /etc/shadow
write $ref/etc/shadow /etc/shadow
sif /etc/shadow mode 0100640
sif /etc/shadow uid 0
sif /etc/shadow gid 42
write $ref/etc/motd /etc/motd
sif /etc/motd mode 0100644
mkdir /opt
mkdir /opt/app
mkdir /opt/app/conf
write $ref/opt/app/conf/config.json /opt/app/conf/config.json
sif /opt/app/conf/config.json mode 0100644
mkdir /usr
mkdir /usr/local
mkdir /usr/local/bin
write $ref/usr/local/bin/hello /usr/local/bin/hello
sif /usr/local/bin/hello mode 0100755
EOF

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'; }

run_inject() { "$work/inject" "${payload[@]}" "$1" >/dev/null; }
run_injecthash() { "$work/inject" "${hashed[@]}" "$1" >/dev/null; }
run_debugfs() { debugfs -w -f "$work/debugfs.cmds" "$1" >/dev/null 2>&1; }

# bench IMG PRISTINE: RUNS rounds, each timing the CLI and then debugfs on fresh synced copies
# (interleaved, so both see the same moments of a shared machine); prints the median ms of each
# and the peak RSS of one more run of each, every result checked with e2fsck -fn.
check() {
	if ! e2fsck -fn "$2" >"$work/fsck.out" 2>&1; then
		echo "$1 left an unclean filesystem:" >&2
		cat "$work/fsck.out" >&2
		exit 1
	fi
}
bench() {
	local img=$1 pristine=$2 ti=() th=() td=() tm=() tg=() t0 t1 t2 tool irss drss
	for _ in $(seq "$runs"); do
		for tool in inject injecthash debugfs; do
			cp --sparse=always "$pristine" "$img"
			sync "$img"
			t0=${EPOCHREALTIME/./}
			run_"$tool" "$img"
			t1=${EPOCHREALTIME/./}
			case $tool in
			inject) ti+=($((t1 - t0))) ;;
			injecthash)
				th+=($((t1 - t0)))
				cmp -s <(debugfs -R 'cat /etc/shadow' "$img" 2>/dev/null) "$ref/etc/shadow" ||
					{ echo "inject with hash: wrote another /etc/shadow than debugfs writes" >&2; exit 1; }
				;;
			debugfs) td+=($((t1 - t0))) ;;
			esac
			check "$tool" "$img"
		done
		t0=${EPOCHREALTIME/./}
		mkpasswd -m sha-512 's3cret pass' >/dev/null
		t1=${EPOCHREALTIME/./}
		"$work/minimal"
		t2=${EPOCHREALTIME/./}
		tm+=($((t1 - t0)))
		tg+=($((t2 - t1)))
	done
	cp --sparse=always "$pristine" "$img"
	irss=$("$TIMEFMT" -f %M "$work/inject" "${payload[@]}" "$img" 2>&1 >/dev/null | tail -1)
	check inject "$img"
	cp --sparse=always "$pristine" "$img"
	drss=$("$TIMEFMT" -f %M debugfs -w -f "$work/debugfs.cmds" "$img" 2>&1 >/dev/null | tail -1)
	check debugfs "$img"
	printf '%s %s %s %s %s %s %s\n' "$(printf '%s\n' "${ti[@]}" | median)" "$irss" "$(printf '%s\n' "${td[@]}" | median)" "$drss" \
		"$(printf '%s\n' "${th[@]}" | median)" "$(printf '%s\n' "${tm[@]}" | median)" "$(printf '%s\n' "${tg[@]}" | median)"
}

printf '%-6s %10s %15s %11s %16s %15s %12s %12s\n' size inject_ms inject_rss_kib debugfs_ms debugfs_rss_kib inject_hash_ms mkpasswd_ms min_go_ms
for size in 1G 20G 1T; do
	pristine=$work/$size.pristine.img
	truncate -s "$size" "$pristine"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -d "$src" "$pristine"
	bench "$work/$size.img" "$pristine" >"$work/res" # an unclean result stops the script here
	read -r ims irss dms drss hms mms gms <"$work/res"
	printf '%-6s %10s %15s %11s %16s %15s %12s %12s\n' "$size" "$ims" "$irss" "$dms" "$drss" "$hms" "$mms" "$gms"
	rm -f "$pristine" "$work/$size.img"
done
uptime
