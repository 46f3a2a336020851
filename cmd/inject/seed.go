package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/seed"
)

// seedArgs is the parsed command line of `inject seed`.
type seedArgs struct {
	format, output, fsys   string
	hostname, instanceID   string
	rootPassword, userData string
	timestamp              string
	keys                   keyFlags // --key and --key-user, as for injection
	metas, ips, files      multi
}

const seedHelp = `inject seed builds the disk a cloud guest reads at first boot.

Usage:
  inject seed --format nocloud|configdrive|opennebula --output FILE [flags]

Flags:
  --format F           nocloud (label cidata: meta-data, user-data,
                       network-config), configdrive (label config-2:
                       openstack/{latest,2018-08-27}/meta_data.json,
                       network_data.json, user_data, openstack/content/NNNN,
                       ec2/latest/meta-data.json) or opennebula (label
                       CONTEXT: context.sh and the --file files beside it)
  --output FILE        the image to write (replaced once complete)
  --fs iso9660|vfat    the image's filesystem: ISO9660 with Rock Ridge and
                       Joliet (default), or FAT12/16 with long names (nocloud
                       and configdrive; cloud-init reads both)
  --key FILE           SSH public key file (repeatable)
  --key-user NAME      whose keys the following --key flags are (default root)
  --hostname NAME      the guest's host name
  --ip IFACE=...       network interface, as for injection (repeatable)
  --meta KEY=VALUE     metadata pair (repeatable)
  --root-password SEL  password:TEXT | file:PATH | random (a sha512-crypt hash
                       goes in the seed)
  --user-data FILE     your own user-data: alone, passed through; with
                       generated settings, merged as MIME multipart
  --file GUESTPATH=LOCALFILE  a file for the guest (repeatable)
  --instance-id ID     instance id (default: a UUID derived from the data)
  --timestamp T        the image's dates, RFC 3339 or Unix seconds (default
                       2000-01-01T00:00:00Z: same inputs, same bytes)
  e.g. inject seed --format nocloud --output seed.iso --hostname vm1 \
         --key id.pub --ip 'eth0=192.0.2.10/24,gw=192.0.2.1'
`

func parseSeedArgs(args []string) (*seedArgs, error) {
	a := &seedArgs{}
	fs := newFlagSet("seed")
	fs.StringVar(&a.format, "format", "", "")
	fs.StringVar(&a.output, "output", "", "")
	fs.StringVar(&a.fsys, "fs", "iso9660", "")
	fs.StringVar(&a.hostname, "hostname", "", "")
	fs.StringVar(&a.instanceID, "instance-id", "", "")
	fs.StringVar(&a.rootPassword, "root-password", "", "")
	fs.StringVar(&a.userData, "user-data", "", "")
	fs.StringVar(&a.timestamp, "timestamp", "", "")
	a.keys.register(fs)
	fs.Var(&a.metas, "meta", "")
	fs.Var(&a.ips, "ip", "")
	fs.Var(&a.files, "file", "")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, flagError(err)
	}
	switch {
	case len(pos) != 0:
		return nil, usagef("seed takes no arguments, got %q", pos)
	case a.keys.check() != nil:
		return nil, a.keys.check()
	case a.format == "":
		return nil, usagef("seed: --format is required (nocloud, configdrive or opennebula)")
	case a.output == "":
		return nil, usagef("seed: --output is required")
	case a.fsys != "iso9660" && a.fsys != "vfat":
		return nil, usagef("seed: --fs %q: want iso9660 or vfat", a.fsys)
	case a.fsys == "vfat" && a.format == "opennebula":
		return nil, usagef("seed: --fs vfat: OpenNebula's CONTEXT disk is ISO9660; want --fs iso9660")
	}
	return a, nil
}

// data reads the local inputs and turns the flags into seed.Data; random
// is a generated password.
func (a *seedArgs) data() (d *seed.Data, random string, err error) {
	d = &seed.Data{Hostname: a.hostname, InstanceID: a.instanceID}
	for _, g := range a.keys.groups {
		keys, err := readKeys(g.files)
		if err != nil {
			return nil, "", err
		}
		d.Keys = append(d.Keys, seed.UserKeys{User: g.user, Keys: keys})
	}
	if d.Meta, err = parseMeta(a.metas); err != nil {
		return nil, "", err
	}
	for _, s := range a.ips {
		ifc, err := parseIP(s)
		if err != nil {
			return nil, "", usagef("%v", err)
		}
		d.Network = append(d.Network, ifc)
	}
	if d.Files, err = readFiles(a.files); err != nil {
		return nil, "", err
	}
	if a.userData != "" {
		if d.UserData, err = os.ReadFile(a.userData); err != nil {
			return nil, "", fmt.Errorf("--user-data: %w", err)
		}
	}
	if a.rootPassword != "" {
		p, r, err := (&injectArgs{rootPassword: a.rootPassword}).password()
		if err != nil {
			return nil, "", err
		}
		if p.Plain == "" || p.Locked {
			return nil, "", usagef("--root-password %q: a seed takes password:, file: or random", a.rootPassword)
		}
		d.Password = &seed.Password{User: "root", Plain: p.Plain}
		random = r
	}
	return d, random, nil
}

// addSeedInImage adds, for --seed-in-image nocloud, the NoCloud files
// built from the injection's keys, network, metadata and password to its
// files, so they are validated and written with the other items. The
// --file files are injected directly, not repeated in the seed.
func (a *injectArgs) addSeedInImage(d *inject.Data) error {
	switch a.seedInImage {
	case "":
		return nil
	case string(seed.NoCloud):
	default:
		return usagef("--seed-in-image %q: want nocloud", a.seedInImage)
	}
	sd := &seed.Data{Meta: d.Meta}
	if len(d.Keys) > 0 {
		sd.Keys = []seed.UserKeys{{User: d.KeyUser, Keys: d.Keys}}
	}
	for _, uk := range d.UserKeys {
		sd.Keys = append(sd.Keys, seed.UserKeys{User: uk.User, Keys: uk.Keys})
	}
	if d.Network != nil {
		if d.Network.Verbatim != nil {
			return usagef("--seed-in-image: the seed's network-config comes from --ip, not --net")
		}
		sd.Network = d.Network.Interfaces
	}
	if p := d.AdminPassword; p != nil {
		if p.Disabled || p.Locked {
			return usagef("--seed-in-image: cloud-init's seed takes a password, not a locked or disabled one")
		}
		sd.Password = &seed.Password{User: p.User, Plain: p.Plain, Hash: p.Hash}
	}
	files, err := seed.GuestFiles(sd)
	if err != nil {
		return fmt.Errorf("--seed-in-image: %w", err)
	}
	d.Files = append(d.Files, files...)
	return nil
}

func (a *seedArgs) stamp() (time.Time, error) {
	if a.timestamp == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(a.timestamp, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, a.timestamp)
	if err != nil {
		return time.Time{}, usagef("--timestamp %q: want RFC 3339 or Unix seconds", a.timestamp)
	}
	return t, nil
}

func runSeed(args []string, stdout, stderr io.Writer) int {
	a, err := parseSeedArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, seedHelp)
		return exitOK
	}
	if err != nil {
		return fail(stderr, err)
	}
	format, err := seed.ParseFormat(a.format)
	if err != nil {
		return fail(stderr, usagef("--format: %v", err))
	}
	stamp, err := a.stamp()
	if err != nil {
		return fail(stderr, err)
	}
	d, random, err := a.data()
	if err != nil {
		return fail(stderr, err)
	}
	files, err := seed.Build(format, d)
	if err != nil {
		return fail(stderr, fmt.Errorf("seed: %w", err))
	}
	if err := seed.Write(a.output, format, seed.Filesystem(a.fsys), files, stamp); err != nil {
		return fail(stderr, fmt.Errorf("seed %s: %w", a.output, err))
	}
	if random != "" {
		fmt.Fprintf(stderr, "inject: root password in the seed: %s\n", random)
	}
	fmt.Fprintf(stdout, "%s: %s seed (label %s), %d files\n", a.output, format, format.Label(), len(files))
	return exitOK
}
