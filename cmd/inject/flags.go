package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	return usagef("%v", err)
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
  inject ls [-l] [IMAGE FLAGS] TARGET GUESTPATH
                                    list a guest directory (with -l: mode, uid,
                                    gid, size, name, and -> target for symlinks)
  inject inspect [--json] [--format F] [--backing B] [--partition P] IMAGE
                                    describe an image: format, virtual size,
                                    qcow2 details, backing chain, partition
                                    table, filesystems, the guest root and its
                                    OS (from os-release)

TARGET is a directory holding a guest root (an unpacked rootfs), or a disk
image file: raw or qcow2 (detected by its magic; vmdk, vhd, vhdx, vdi and iso
are refused), possibly a thin overlay on a backing file, with an MBR (logical
partitions too) or GPT partition table, or one filesystem on the whole disk.
The guest root must be ext2/3/4. A directory TARGET must look like a guest
root as images are judged (an /etc directory and one of /sbin/init,
/usr/lib/os-release, /etc/os-release), and the host's own root ("/", or any
path leading to it) is always refused. The read verbs (cat, ls, inspect) and
--dry-run open images read-only. An image a running VM (qemu) holds is
refused as "in use". Every input is validated against the guest before the
first write; if any item fails, nothing is written. On an image, the
filesystem's writes are held in memory and reach the image only once every
item has been written, in the order the engine made them; a failure found
while writing (the last file does not fit, a corrupt block) leaves the image
byte for byte unchanged. At most 1 GiB of writes is held: an injection that
writes more is refused, and nothing is written.

Flags:
  --key FILE                  SSH public key file (repeatable); every key line
                              in it is added to ~/.ssh/authorized_keys of
                              --key-user unless already there
                                e.g. --key ~/.ssh/id_ed25519.pub
  --key-user NAME             whose authorized_keys (default root); home, uid
                              and gid come from the guest's /etc/passwd
                                e.g. --key-user debian
  --meta KEY=VALUE            metadata pair for /meta.js (repeatable)
                                e.g. --meta role=web --meta owner=ops
  --net FILE                  install FILE as /etc/network/interfaces
                                e.g. --net ./interfaces
  --ip IFACE=ADDR/PREFIX[,gw=GW][,dns=DNS1;DNS2][,hw=MAC][,ip6=ADDR6/PREFIX][,gw6=GW6]
  --ip IFACE=dhcp[,dns=...][,hw=MAC][,ip6=ADDR6/PREFIX][,gw6=GW6]
                              structured interface (repeatable), rendered into
                              /etc/network/interfaces; not with --net
                                e.g. --ip 'eth0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53;9.9.9.9'
                                     --ip eth1=dhcp,hw=52:54:00:12:34:56
  --file GUESTPATH=LOCALFILE  inject a file: missing parents are created 0755
                              root:root, the content is replaced (repeatable)
                                e.g. --file /etc/motd=./motd
  --root-password SELECTOR    set root's password hash in /etc/shadow:
                              password:TEXT | file:PATH (its first line) |
                              random (generated, printed once to stderr)
                                e.g. --root-password file:./root-pw.txt
  --password-crypto sha512|md5
                              hash scheme for --root-password (default sha512;
                              md5 for old guests)
                                e.g. --password-crypto md5
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
                              a K, M, G or T suffix (powers of 1024); default
                              the size of TARGET, and smaller is refused
                                e.g. --overlay vm1.qcow2 --size 20G
  --grow[=PART]               before injecting, extend the root filesystem's
                              partition (or partition PART, which must then be
                              the last one) to the end of the disk and grow
                              its ext2/3/4 filesystem to fill it, as growpart
                              and resize2fs would, in the same all-or-nothing
                              write as the injection; a partition after it,
                              shrinking, or a filesystem that cannot grow
                              without moving metadata is refused, nothing
                              written. With --overlay and --size, or on an
                              image already resized (qemu-img resize)
                                e.g. inject --overlay vm1.qcow2 --size 20G --grow --key id.pub base.qcow2
  --force                     write into an ext filesystem whose superblock
                              says it has errors, was not cleanly unmounted,
                              may be mounted (MMP) or has orphan inodes; without
                              it such an image is refused and left untouched
                                e.g. inject --force --key id.pub disk.img
  --allow-non-root-dir        inject into a directory TARGET that lacks /etc or
                              the OS markers (a partial tree); the host's root
                              directory is refused even so
                                e.g. inject --allow-non-root-dir --file /app/cfg=./cfg ./overlay-dir
  --dry-run                   validate and report the plan, write nothing
                              (with --overlay: check it, create nothing); on
                              an image the injection is made in memory and
                              thrown away, so the dry run fails where the real
                              run would (no space left, a refused filesystem)
                                e.g. inject --dry-run --key id.pub ./rootfs
  --json                      machine-readable report on stdout (inject and
                              inspect)
                                e.g. inject --json --meta a=b ./rootfs | jq .
                                     inject inspect --json disk.qcow2
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
  --partition N|auto|none     which filesystem: auto (default) picks the one
                              partition holding an ext filesystem with /etc and
                              one of /sbin/init, /usr/lib/os-release,
                              /etc/os-release (none or several is an error
                              listing the candidates); N is a partition number
                              as Linux numbers them (1-4 primary, 5+ logical,
                              GPT entry index+1); none is a filesystem on the
                              whole disk
                                e.g. --partition 2
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
