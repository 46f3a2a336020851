package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// parseInterspersed parses fs over args, allowing flags after positional
// arguments (everything after "--" is positional), and returns the
// positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagError turns a flag package error into a usage error; -h/--help is
// returned as flag.ErrHelp.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usagef("%s", dashFlags(err.Error()))
}

// flagNameInMsg is a flag name as the flag package echoes it (one dash).
var flagNameInMsg = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(defined: |argument: |for flag |for )-([A-Za-z][A-Za-z0-9-]+)`)
})

// dashFlags rewrites the flag package's "-name" as "--name", the form
// the help documents (one-letter flags keep one dash).
func dashFlags(msg string) string {
	return flagNameInMsg().ReplaceAllString(msg, "${1}--${2}")
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// offsetFlag is --offset BYTES.
type offsetFlag int64

func (o *offsetFlag) String() string { return strconv.FormatInt(int64(*o), 10) }
func (o *offsetFlag) Set(s string) error {
	base, digits := 10, s
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		base, digits = 16, h
	}
	v, err := strconv.ParseInt(digits, base, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("want a byte count >= 0, decimal or 0x hex")
	}
	*o = offsetFlag(v)
	return nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

const helpText = `inject edits a guest filesystem offline: no root, no mount, no helper VM.

Usage:
  inject [flags] TARGET             inject into a guest
  inject cat [IMAGE FLAGS] TARGET GUESTPATH...
                                    print guest files
  inject ls [-l] [IMAGE FLAGS] TARGET [GUESTPATH]
                                    list a guest directory, / by default (with
                                    -l: mode, uid, gid, size, name, and ->
                                    target for symlinks)
  inject inspect [--json] [--format F] [--backing B] [--partition P] IMAGE
                                    describe an image: format, virtual size,
                                    qcow2 details, backing chain, partition
                                    table, filesystems, the guest root and its
                                    OS (from os-release); a missing or denied
                                    backing file is reported, not fatal
  inject seed --format F --output FILE [flags]
                                    build a first-boot seed disk (NoCloud,
                                    OpenStack config drive, OpenNebula
                                    CONTEXT) from the injection's flags; see
                                    inject seed --help
  inject sysprep [--operations LIST] [--list-operations] [flags] TARGET
                                    virt-sysprep's operations that need no
                                    guest execution (machine-id, ssh-hostkeys,
                                    logfiles, ...), then the customisation
                                    flags; see inject sysprep --help
  inject help [VERB]                this page, or the page of cat, ls, inspect,
                                    sysprep, customize (the ordered operations)
                                    (also: inject VERB --help)
  inject completion bash|zsh        shell completions, from the same flags
                                      e.g. source <(inject completion bash)
  inject --version                  module version, VCS revision, Go version

The read verbs take -U/--force-share to read an image a running VM holds
(no lock, as qemu-img -U; a warning says the view may be inconsistent) and
-q to silence warnings.

TARGET is a directory holding a guest root (an unpacked rootfs), or a disk
image file: raw or qcow2 (detected by its magic; vmdk, vhd, vhdx, vdi and iso
are refused), possibly a thin overlay on a backing file, with an MBR (logical
partitions too) or GPT partition table, or one filesystem on the whole disk.
An injection's guest root may be ext2/3/4 or XFS (v5 and v4; see the README for
what the XFS writer refuses: a dirty log, quota accounting, realtime).
A directory TARGET must look like a guest root as images are judged (an
/etc directory and one of /sbin/init, /usr/lib/os-release, /etc/os-release,
/etc/redhat-release), and the host's own root ("/", or any
path leading to it) is always refused. The read verbs (cat, ls, inspect) and
--dry-run open images read-only. An image a running VM (qemu) holds is
refused as "in use". A journal left by a crash is replayed in memory (the
read verbs and --dry-run see the recovered filesystem; an injection writes
the replay first). Every input is validated against the guest before the
first write; if any item fails, nothing is written. On an image, the
filesystem's writes are held in memory and reach the image only once every
item has been written, in the order the engine made them; a failure found
while writing (the last file does not fit, a corrupt block) leaves the image
byte for byte unchanged. At most 1 GiB of writes is held: an injection that
writes more is refused, and nothing is written.

Flags:
  --key FILE                  SSH public key file (repeatable); every key line
                              in it is added to ~/.ssh/authorized_keys of
                              its user unless already there (a private key
                              is refused: give the .pub)
                                e.g. --key ~/.ssh/id_ed25519.pub
  --key-user NAME             whose authorized_keys the --key flags after it
                              go to, up to the next --key-user; keys before
                              any --key-user are root's (one --key-user after
                              all the keys takes them all); home, uid and gid
                              come from the guest's /etc/passwd
                                e.g. --key-user debian
                                e.g. --key root.pub --key-user debian --key d.pub --key-user ops --key o.pub
  --ssh-inject USER[:SELECTOR] virt-customize's form: keys for USER from
                              file:PATH or string:KEY, or with no selector the
                              invoking user's ~/.ssh/*.pub (repeatable, any
                              number of users; it does not change whose keys
                              later --key flags are). Keys for one user from
                              --key and --ssh-inject make one item
                                e.g. --ssh-inject debian:file:./id.pub --ssh-inject 'ops:string:ssh-ed25519 AAAA... ops'
  --meta KEY=VALUE            metadata pair for /meta.js (repeatable)
                                e.g. --meta role=web --meta owner=ops
  --net FILE                  install FILE verbatim as /etc/network/interfaces
                              (the guest must be, or be told with --net-format
                              to be, an ifupdown guest)
                                e.g. --net ./interfaces
  --ip IFACE=ADDR/PREFIX|dhcp|dhcp6[,OPTION...]
                              structured interface (repeatable), rendered in
                              the guest's own network format; not with --net.
                              IFACE is 1-15 letters, digits, '-', '_', '.',
                              ':'. ADDR/PREFIX is IPv4 or IPv6. OPTIONs:
                                gw=GW          default gateway (IPv6 when the
                                               address is IPv6)
                                ip6=ADDR6/PREFIX|dhcp   static IPv6 or DHCPv6
                                gw6=GW6        IPv6 default gateway
                                dns=DNS1;DNS2  name servers (IPv4 or IPv6)
                                search=DOM1;DOM2  DNS search domains
                                hw=MAC         the device's MAC: matched by
                                               netplan, NetworkManager,
                                               networkd and ifcfg; set by
                                               ifupdown and wicked
                                mtu=N          link MTU (>= 1280 with IPv6)
                                route=NET/PREFIX via GW  static route
                                               (repeatable)
                                e.g. --ip 'eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;9.9.9.9,search=example.com'
                                     --ip eth1=dhcp,hw=52:54:00:12:34:56,mtu=9000
                                     --ip 'ens3=dhcp,ip6=dhcp,route=10.0.0.0/8 via 192.0.2.254'
                                     --ip 'eth0=2001:db8::10/64,gw=2001:db8::1,route=2001:db8:9::/48 via 2001:db8::fe'
  --net-format auto|ifupdown|netplan|networkmanager|networkd|ifcfg|wicked
                              the guest's network format (default auto:
                              detected from the guest's files, the choice and
                              its reason reported, text and --json; a guest
                              whose stack cannot be told is refused). Files:
                              ifupdown /etc/network/interfaces; netplan
                              /etc/netplan/90-guestinject.yaml (0600);
                              networkmanager /etc/NetworkManager/system-
                              connections/guestinject-IFACE.nmconnection
                              (0600); networkd /etc/systemd/network/
                              05-guestinject-IFACE.network; ifcfg /etc/
                              sysconfig/network-scripts/ifcfg-IFACE, route-
                              IFACE, route6-IFACE; wicked /etc/sysconfig/
                              network/ifcfg-IFACE, ifroute-IFACE (DNS in
                              /etc/sysconfig/network/config)
                                e.g. --net-format networkmanager
  --file GUESTPATH=LOCALFILE[,mode=OCTAL][,owner=USER:GROUP]
                              inject a file: missing parents are created 0755
                              root:root, the content is replaced (repeatable);
                              GUESTPATH must be absolute (a reversed
                              LOCALFILE=GUESTPATH is refused); mode= sets its
                              permissions (else a new file is 0644, an old
                              one keeps its mode), owner= its owner (names
                              looked up in the guest; else root:root for a
                              new file). --chmod and --chown do the same as
                              ordered operations, after every --file
                                e.g. --file /etc/motd=./motd
                                     --file /usr/local/bin/run=./run.sh,mode=0755,owner=root:staff
  --root-password SELECTOR    set root's password field in /etc/shadow
                              (virt-customize's selectors): password:TEXT |
                              file:PATH (its first line) | random (generated;
                              printed once to stderr, or with --json as
                              "root_password" in the report; a dry run shows
                              none) | disabled (*) | locked (!*) |
                              locked:password:TEXT | locked:file:PATH |
                              locked:random (! before the hash); and a
                              prepared crypt(3) hash, written as is:
                              hash:HASH | hash-file:PATH | locked:hash:HASH
                                e.g. --root-password file:./root-pw.txt
  --password USER:SELECTOR    the same for any user of the guest's
                              /etc/passwd (repeatable; one rewrite of
                              /etc/shadow; users missing are named together
                              and nothing is written); random ones are in
                              --json's "passwords" by user
                                e.g. --password debian:random --password ops:locked
  --selinux-relabel           last, give every object the run created or
                              changed its SELinux label (security.selinux)
                              from the guest's own policy: /etc/selinux/
                              SELINUXTYPE/contexts/files/file_contexts (+
                              .homedirs, .local, .subs, .subs_dist), matched
                              as libselinux does; no boot-time relabel. A
                              policy that cannot be read falls back to
                              /.autorelabel and the report says why; a guest
                              without /etc/selinux needs nothing
                                e.g. inject --selinux-relabel --key id.pub disk.img
  --password-crypto yescrypt|sha512|sha256|md5
                              hash scheme for --root-password and --password
                              (default: the guest's ENCRYPT_METHOD and
                              YESCRYPT_COST_FACTOR in /etc/login.defs, else
                              sha512; md5 for old guests)
                                e.g. --password-crypto yescrypt
  --overlay NEW.qcow2         do not touch TARGET: create NEW.qcow2, a qcow2
                              overlay backed by TARGET (raw or qcow2), and
                              inject into the overlay; TARGET is only ever
                              opened read-only. NEW.qcow2 must not exist; if
                              the injection fails it is removed again. The
                              overlay names TARGET relative to its own
                              directory when TARGET lies inside it, else by
                              absolute path (reading such an overlay later
                              needs --backing allow)
                                e.g. inject --overlay vm1.qcow2 --key id.pub base.qcow2
  --size SIZE                 with --overlay: its virtual size, bytes or with
                              a K, M, G or T suffix (powers of 1024; a
                              fraction that comes to whole bytes, 1.5G); default
                              the size of TARGET, and smaller is refused.
                              Without --overlay: TARGET (raw or qcow2, its top
                              layer) is resized in place first, as qemu-img
                              resize would; undone byte for byte if the run
                              fails. Shrinking, a qcow2 with internal snapshots
                              or persistent bitmaps are refused; a dry run only
                              checks the request
                                e.g. --overlay vm1.qcow2 --size 20G
                                e.g. --size 20G --grow --key id.pub disk.qcow2
  --grow[=PART]               before injecting, extend the root filesystem's
                              partition (or partition PART, which must then be
                              the last one) to the end of the disk and grow
                              its ext2/3/4 filesystem to fill it, as growpart
                              and resize2fs would, in the same all-or-nothing
                              write as the injection; a partition after it,
                              shrinking, or a filesystem that cannot grow
                              without moving metadata is refused, nothing
                              written. With --size (in place or with
                              --overlay), or on an image already resized
                                e.g. inject --overlay vm1.qcow2 --size 20G --grow --key id.pub base.qcow2
  --seed-in-image nocloud     also write the NoCloud seed files (meta-data,
                              user-data, network-config from --key, --ip,
                              --meta, --root-password) in the guest at
                              /var/lib/cloud/seed/nocloud/, for cloud-init
                                e.g. --seed-in-image nocloud
  --force                     write into an ext filesystem whose superblock
                              says it has errors, was not cleanly unmounted,
                              may be mounted (MMP) or has orphan inodes; without
                              it such an image is refused and left untouched
                                e.g. inject --force --key id.pub disk.img
  --allow-non-root-dir        inject into a directory TARGET that lacks /etc or
                              the OS markers (a partial tree); the host's root
                              directory is refused even so
                                e.g. inject --allow-non-root-dir --file /app/cfg=./cfg ./overlay-dir
  --dry-run                   validate and report the plan, write nothing;
                              the plan names each guest path with what the
                              write does to it: create, replace, append,
                              modify (mode or owner only) or unchanged, in
                              the words the real run's report uses
                              (with --overlay: check it, create nothing); on
                              an image the injection is made in memory and
                              thrown away, so the dry run fails where the real
                              run would (no space left, a refused filesystem)
                                e.g. inject --dry-run --key id.pub ./rootfs
  --json                      machine-readable report on stdout (inject and
                              inspect); a failure adds "error_class":
                              corrupt, unsupported, read-only, in-use,
                              unclean, not-found, no-space, out-of-range,
                              invalid, ambiguous, denied (or failed, usage)
                                e.g. inject --json --meta a=b ./rootfs | jq .
                                     inject inspect --json disk.qcow2
  -q, --quiet                 no report on stdout (errors still on stderr)
                                e.g. inject -q --meta a=b disk.img
  -v, --verbose               the report lists each filesystem operation too
                                e.g. inject -v --dry-run --key id.pub disk.img
  -h, --help                  this help

Image flags (inject, cat, ls; inspect takes all but --offset):
  --format raw|qcow2          the container format of TARGET, instead of
                              detecting it by its magic
                                e.g. --format raw
  --backing allow|deny        which backing files an image may name. Default:
                              relative names that resolve beside the image or
                              below its directory are allowed; absolute names
                              and names escaping the directory are denied.
                              allow opens whatever the image names; deny
                              refuses any image with a backing file
                                e.g. --backing allow
  --partition N|VG/LV|auto|none
                              which filesystem: auto (default) picks the one
                              partition or LVM logical volume holding an ext
                              or XFS filesystem with /etc and one of
                              /sbin/init, /usr/lib/os-release,
                              /etc/os-release, /etc/redhat-release (none or
                              several is an error
                              listing the candidates); N is a partition number
                              as Linux numbers them (1-4 primary, 5+ logical,
                              GPT entry index+1); VG/LV a linear or striped
                              logical volume; none is a filesystem on the
                              whole disk
                                e.g. --partition 2, --partition rhel/root
  --offset BYTES              the filesystem starts at this byte of the disk
                              (decimal or 0x hex); bypasses the partition table,
                              not with --partition
                                e.g. --offset 1048576

Exit status: 0 success, 1 the injection or a read failed (stderr names the
image, the partition and the path, and why), 2 usage error.

Examples:
  inject --key id.pub --meta role=web --ip eth0=192.0.2.10/24,gw=192.0.2.1 ./rootfs
  inject --key id.pub --root-password random disk.qcow2
  inject --overlay vm1.qcow2 --size 20G --key id.pub --meta uuid=vm1 base.qcow2
  inject --dry-run --json --root-password random ./rootfs
  inject cat disk.img /etc/os-release
  inject cat --partition 2 disk.qcow2 /etc/fstab
  inject ls -l disk.img /etc
  inject inspect disk.qcow2
`
