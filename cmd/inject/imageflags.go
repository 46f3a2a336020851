package main

import (
	"flag"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/guestinject/guestinject/formats"
	"github.com/guestinject/guestinject/inject/diskimage"
)

// imageFlags say how to open an image TARGET: its container format, the
// backing-file policy, which partition, or a raw byte offset.
type imageFlags struct {
	format    string // "", raw, qcow2
	backing   string // "", allow, deny
	partition string // "", auto, none, N
	offset    offsetFlag
	offsetSet bool // --offset was given (even 0): the table is bypassed
	// share is -U/--force-share (read verbs only): open without qemu's
	// image locks, so an image a running VM holds can be read.
	share bool
}

// registerShare adds -U and --force-share (the read verbs': a write
// never goes without the lock).
func (f *imageFlags) registerShare(fs *flag.FlagSet) {
	fs.BoolVar(&f.share, "U", false, "")
	fs.BoolVar(&f.share, "force-share", false, "")
}

// warnShare says, once, what -U gives up.
func (f *imageFlags) warnShare(warn func(string)) {
	if f.share {
		warn("--force-share: reading without the image lock; if a running VM writes to the image meanwhile, what is shown may be inconsistent")
	}
}

// register adds --format, --backing, --partition and --offset to fs.
func (f *imageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "", "")
	fs.StringVar(&f.backing, "backing", "", "")
	fs.StringVar(&f.partition, "partition", "", "")
	fs.Var(&f.offset, "offset", "")
}

// parsed records which flags fs saw and checks their values.
func (f *imageFlags) parsed(fs *flag.FlagSet) error {
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "offset" {
			f.offsetSet = true
		}
	})
	switch f.format {
	case "", formats.FormatRaw, formats.FormatQcow2:
	default:
		return usagef("--format %q: want raw or qcow2", f.format)
	}
	switch f.backing {
	case "", "allow", "deny":
	default:
		return usagef("--backing %q: want allow or deny", f.backing)
	}
	switch f.partition {
	case "", "auto", "none":
	default:
		vg, lv, isLV := strings.Cut(f.partition, "/")
		if isLV && vg != "" && lv != "" && !strings.Contains(lv, "/") {
			break
		}
		if n, err := strconv.Atoi(f.partition); err != nil || n < 1 {
			return usagef("--partition %q: want auto, none, a partition number (1, 2, ...) or an LVM volume VG/LV", f.partition)
		}
	}
	if f.offsetSet && f.partition != "" {
		return usagef("--offset and --partition exclude each other (--offset bypasses the partition table)")
	}
	return nil
}

// given reports whether any image flag was set (they mean nothing for a
// directory TARGET).
func (f *imageFlags) given() bool {
	return f.format != "" || f.backing != "" || f.partition != "" || f.offsetSet || f.share
}

// policy maps --backing to the library's policy; unset keeps its default
// (relative names beside or below the image allowed, others denied).
func (f *imageFlags) policy() formats.BackingPolicy {
	switch f.backing {
	case "allow":
		return formats.BackingAllow
	case "deny":
		return formats.BackingDeny
	}
	return formats.BackingDefault
}

// options are the diskimage.Options these flags select (write and journal
// policy are added by the caller).
func (f *imageFlags) options() diskimage.Options {
	o := diskimage.Options{Format: f.format, Backing: f.policy(), Partition: f.partition, NoLock: f.share}
	if f.offsetSet {
		o.Partition = "none"
		o.Offset = int64(f.offset)
	}
	return o
}

// sizeFlag is --size SIZE: bytes, or a number with a K, M, G or T suffix
// (powers of 1024; an optional trailing "iB" or "B" is accepted).
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize reads SIZE as --size documents it.
func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	shift := 0
	if t != "" {
		if i := strings.IndexByte("KMGT", upper(t[len(t)-1])); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:len(t)-1]
		}
	}
	// A decimal fraction is accepted when it comes to whole bytes
	// (1.5G, 0.5K); 1.3K is 1331.2 bytes and refused.
	r, ok := new(big.Rat).SetString(t)
	if !ok || strings.ContainsAny(t, "/eE") || r.Sign() <= 0 {
		return 0, fmt.Errorf("want a positive size: bytes, or a number with K, M, G or T (powers of 1024), e.g. 20G, 1.5G, 512M")
	}
	r.Mul(r, new(big.Rat).SetInt64(1<<shift))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %s is not a whole number of bytes (%s); give bytes or a larger unit", v, r.FloatString(1))
	}
	if !r.Num().IsInt64() || r.Num().Int64() > 1<<62 {
		return 0, fmt.Errorf("size %s is too large", v)
	}
	return r.Num().Int64(), nil
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// growFlag is --grow[=PART]: alone, grow the root filesystem's partition
// ("root"); with a value, partition PART.
type growFlag string

func (g *growFlag) String() string   { return string(*g) }
func (g *growFlag) IsBoolFlag() bool { return true }
func (g *growFlag) Set(v string) error {
	switch v {
	case "true", "root":
		*g = "root"
		return nil
	case "false":
		*g = ""
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return fmt.Errorf("want --grow alone (the root filesystem's partition) or --grow=N, a partition number")
	}
	*g = growFlag(v)
	return nil
}
