package seed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/guestinject/guestinject/inject"
)

func testKey(t *testing.T, seedByte byte, comment string) string {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seedByte}, 32))
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func sampleNet() []inject.Interface {
	return []inject.Interface{{
		Name:    "eth0",
		Address: netip.MustParsePrefix("192.0.2.10/24"),
		Gateway: netip.MustParseAddr("192.0.2.1"),
		DNS:     []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		Search:  []string{"example.com"},
		HWAddr:  mac("52:54:00:12:34:56"),
		MTU:     1400,
		IPv6:    inject.IPv6{Address: netip.MustParsePrefix("2001:db8::10/64"), Gateway: netip.MustParseAddr("2001:db8::1")},
		Routes:  []inject.Route{{To: netip.MustParsePrefix("10.0.0.0/8"), Via: netip.MustParseAddr("192.0.2.254")}},
	}}
}

func sample(t *testing.T) *Data {
	mode := os.FileMode(0o600)
	return &Data{
		Hostname: "vm1.example.com",
		Keys: []UserKeys{
			{Keys: []string{testKey(t, 1, "root@ops")}},
			{User: "debian", Keys: []string{testKey(t, 2, "alice@x"), testKey(t, 3, "bob@x")}},
		},
		Network:  sampleNet(),
		Meta:     map[string]string{"role": "web", "owner": "ops"},
		Password: &Password{Plain: "s3cret"},
		Files: []inject.File{
			{Path: "/etc/motd", Data: []byte("hello\n")},
			{Path: "/etc/app/secret.conf", Data: []byte("token=1\n"), Mode: &mode},
		},
	}
}

func fileOf(t *testing.T, files []File, p string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Path == p {
			return f.Data
		}
	}
	t.Fatalf("no file %s in the seed", p)
	return nil
}

// TestNoCloudOracles: the NoCloud ISO has the cidata label, Rock Ridge
// and Joliet names, its files read back intact; cloud-init validates the
// user-data against its schema, reads the seed directory as NoCloud does,
// and renders the network-config as the model says.
func TestNoCloudOracles(t *testing.T) {
	d := sample(t)
	img, files := writeSeed(t, NoCloud, d)
	dir := checkISO(t, img, "cidata", files)
	schema(t, fileOf(t, files, "user-data"))
	got := python(t, `
import json, sys
from cloudinit import util
seed = util.pathprefix2dict(sys.argv[1] + "/", required=["user-data", "meta-data"], optional=["network-config"])
md = util.load_yaml(seed["meta-data"])
ud = util.load_yaml(seed["user-data"])
net = util.load_yaml(seed["network-config"])
print(json.dumps({"md": md, "ud": ud, "net": net}))
`, dir)
	md := got["md"].(map[string]any)
	if md["local-hostname"] != "vm1.example.com" || md["instance-id"] != deriveID(d) {
		t.Errorf("meta-data as cloud-init reads it: %v", md)
	}
	if m := md["meta"].(map[string]any); m["role"] != "web" || m["owner"] != "ops" {
		t.Errorf("meta-data meta: %v", m)
	}
	ud := got["ud"].(map[string]any)
	if ud["hostname"] != "vm1.example.com" || ud["disable_root"] != false {
		t.Errorf("user-data: %v", ud)
	}
	users := ud["users"].([]any)
	if len(users) != 3 || users[0] != "default" {
		t.Fatalf("users: %v", users)
	}
	for i, uk := range d.Keys {
		u := users[i+1].(map[string]any)
		if u["name"] != userOf(uk.User) || len(u["ssh_authorized_keys"].([]any)) != len(uk.Keys) || u["ssh_authorized_keys"].([]any)[0] != uk.Keys[0] {
			t.Errorf("user %d: %v", i, u)
		}
	}
	cp := ud["chpasswd"].(map[string]any)["users"].([]any)[0].(map[string]any)
	h, _ := cp["password"].(string)
	if cp["name"] != "root" || cp["type"] != "hash" || !strings.HasPrefix(h, "$6$") {
		t.Errorf("chpasswd: %v", cp)
	}
	wf := ud["write_files"].([]any)
	for i, f := range d.Files {
		w := wf[i].(map[string]any)
		content, err := base64.StdEncoding.DecodeString(w["content"].(string))
		if err != nil || w["path"] != f.Path || !bytes.Equal(content, f.Data) {
			t.Errorf("write_files[%d]: %v", i, w)
		}
	}
	if wf[1].(map[string]any)["permissions"] != "0600" {
		t.Errorf("write_files mode: %v", wf[1])
	}
	nd := netConvert(t, filepath.Join(dir, "network-config"), "yaml")
	wantAll(t, "cloud-init's networkd rendering of network-config", nd,
		"Name=eth0", "MACAddress=52:54:00:12:34:56", "MTUBytes=1400", "Address=192.0.2.10/24", "Address=2001:db8::10/64",
		"Gateway=192.0.2.1", "Gateway=2001:db8::1", "Destination=10.0.0.0/8", "Gateway=192.0.2.254", "DNS=192.0.2.53", "Domains=example.com")
}

// TestUserDataPassThroughAndMerge: the user's user-data alone passes
// through byte for byte; with generated settings both go into a MIME
// multipart message cloud-init splits into the two cloud-configs, each
// valid by its schema, the user's marked to append lists.
func TestUserDataPassThroughAndMerge(t *testing.T) {
	own := []byte("#cloud-config\nruncmd:\n  - [touch, /run/own]\npackages: [htop]\n")
	files, err := Build(NoCloud, &Data{UserData: own})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileOf(t, files, "user-data"); !bytes.Equal(got, own) {
		t.Fatalf("pass-through user-data:\n%s", got)
	}
	d := sample(t)
	d.UserData = own
	files, err = Build(NoCloud, d)
	if err != nil {
		t.Fatal(err)
	}
	ud := fileOf(t, files, "user-data")
	msg, err := mail.ReadMessage(bytes.NewReader(ud))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", mt, err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var parts [][]byte
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if p.Header.Get("Content-Type") != `text/cloud-config; charset="utf-8"` {
			t.Errorf("part type %q", p.Header.Get("Content-Type"))
		}
		schema(t, body)
		if len(parts) == 1 && !strings.Contains(p.Header.Get("Merge-Type"), "list(append)") {
			t.Errorf("the user's part has Merge-Type %q", p.Header.Get("Merge-Type"))
		}
		parts = append(parts, body)
	}
	if len(parts) != 2 || !bytes.Equal(parts[1], own) || !bytes.HasPrefix(parts[0], []byte("#cloud-config\nhostname:")) {
		t.Fatalf("parts: %q", parts)
	}
	// cloud-init's own MIME reader sees the same two parts.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ud"), ud, 0o644); err != nil {
		t.Fatal(err)
	}
	got := python(t, `
import json, sys
from cloudinit import user_data
msg = user_data.convert_string(open(sys.argv[1], "rb").read())
print(json.dumps({"parts": [[p.get_content_type(), p.get_payload(decode=True).decode()] for p in msg.walk() if not p.is_multipart()]}))
`, filepath.Join(dir, "ud"))
	ps := got["parts"].([]any)
	if len(ps) != 2 || ps[1].([]any)[1] != string(own) || ps[0].([]any)[0] != "text/cloud-config" {
		t.Errorf("cloud-init reads the parts as %v", ps)
	}
	d.UserData = []byte("no type line\n")
	if _, err := Build(NoCloud, d); !errors.Is(err, ErrInvalid) {
		t.Errorf("untyped user-data merged: %v", err)
	}
}

// TestConfigDriveOracles: config-2 holds both metadata versions, the
// content files and the ec2 tree; cloud-init's ConfigDrive reader reads
// it (uuid, hostname, keys, meta, files with their content, user-data)
// and converts network_data.json to the model's settings.
func TestConfigDriveOracles(t *testing.T) {
	d := sample(t)
	img, files := writeSeed(t, ConfigDrive, d)
	dir := checkISO(t, img, "config-2", files)
	for _, p := range []string{"openstack/latest/meta_data.json", "openstack/2018-08-27/meta_data.json", "openstack/latest/network_data.json",
		"openstack/2018-08-27/user_data", "openstack/content/0000", "openstack/content/0001", "ec2/latest/meta-data.json"} {
		fileOf(t, files, p)
	}
	got := python(t, `
import json, sys
from cloudinit.sources import DataSourceConfigDrive as ds
from cloudinit.sources.helpers import openstack
r = ds.read_config_drive(sys.argv[1])
md = r["metadata"]
files = {k: v.decode() for k, v in r.get("files", {}).items()}
net = openstack.convert_net_json(r["networkdata"], known_macs={})
print(json.dumps({"md": md, "files": files, "ud": r["userdata"].decode(), "version": r["version"], "net": net, "ec2": r.get("ec2-metadata")}))
`, dir)
	md := got["md"].(map[string]any)
	if md["uuid"] != deriveID(d) || md["hostname"] != "vm1.example.com" || md["name"] != "vm1.example.com" {
		t.Errorf("meta_data.json as cloud-init reads it: %v", md)
	}
	pk := md["public_keys"].(map[string]any)
	if len(pk) != 3 || pk["key-0"] != d.Keys[0].Keys[0] || pk["key-2"] != d.Keys[1].Keys[1] {
		t.Errorf("public_keys: %v", pk)
	}
	if m := md["meta"].(map[string]any); m["role"] != "web" {
		t.Errorf("meta: %v", m)
	}
	fs := got["files"].(map[string]any)
	if fs["/etc/motd"] != "hello\n" || fs["/etc/app/secret.conf"] != "token=1\n" {
		t.Errorf("files as cloud-init reads them: %v", fs)
	}
	if got["version"] != float64(2) {
		t.Errorf("version %v", got["version"])
	}
	ud := got["ud"].(string)
	schema(t, []byte(ud))
	if strings.Contains(ud, "write_files") || !strings.Contains(ud, "chpasswd") {
		t.Errorf("config drive user_data:\n%s", ud)
	}
	if ec2 := got["ec2"].(map[string]any); ec2["instance-id"] != deriveID(d) {
		t.Errorf("ec2 metadata: %v", ec2)
	}
	nd := netConvert(t, filepath.Join(dir, "openstack/latest/network_data.json"), "network_data.json")
	wantAll(t, "cloud-init's networkd rendering of network_data.json", nd,
		"Name=eth0", "MACAddress=52:54:00:12:34:56", "MTUBytes=1400", "Address=192.0.2.10/24", "Address=2001:db8::10/64",
		"Gateway=192.0.2.1", "Gateway=2001:db8::1", "Destination=10.0.0.0/8", "Gateway=192.0.2.254", "DNS=192.0.2.53", "Domains=example.com")
}

// hostile values that must survive sh's quoting.
var hostile = map[string]string{
	"QUOTES":   `it's "quoted" \ back`,
	"SUBST":    "$(touch /tmp/pwned) `id` ${HOME}",
	"NEWLINES": "line1\nline2\n\n",
	"EMPTY":    "",
	"GLOB":     "* ? [a] ~ ; & | < > #",
	"UNICODE":  "héllo ✓",
}

// TestOpenNebulaContextSourcesBack: context.sh sourced by sh gives back
// every value (hostile ones included) and runs nothing; cloud-init's
// OpenNebula datasource reads the disk's directory.
func TestOpenNebulaContextSourcesBack(t *testing.T) {
	d := sample(t)
	d.Keys = d.Keys[:1]
	d.Network[0].Routes = append(d.Network[0].Routes, inject.Route{To: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.253")})
	d.Meta = hostile
	img, files := writeSeed(t, OpenNebula, d)
	dir := checkISO(t, img, "CONTEXT", files)
	fileOf(t, files, "motd")
	fileOf(t, files, "secret.conf")
	h, _ := passwordHash(d.Password, deriveID(d))
	want := map[string]string{
		"HOSTNAME": "vm1.example.com", "SSH_PUBLIC_KEY": d.Keys[0].Keys[0], "USERNAME": "root", "CRYPTED_PASSWORD": h,
		"ETH0_MAC": "52:54:00:12:34:56", "ETH0_IP": "192.0.2.10", "ETH0_MASK": "255.255.255.0", "ETH0_GATEWAY": "192.0.2.1",
		"ETH0_DNS": "192.0.2.53", "ETH0_SEARCH_DOMAIN": "example.com", "ETH0_MTU": "1400",
		"ETH0_IP6": "2001:db8::10", "ETH0_IP6_PREFIX_LENGTH": "64", "ETH0_IP6_GATEWAY": "2001:db8::1",
		"ETH0_ROUTES": "10.0.0.0/8 via 192.0.2.254, 198.51.100.0/24 via 192.0.2.253",
	}
	for k, v := range hostile {
		want[k] = v
	}
	need(t, "sh")
	for k, v := range want {
		got := run(t, dir, "sh", "-c", `. ./context.sh; printf '%s' "$`+k+`"`)
		if got != v {
			t.Errorf("sh: $%s = %q, want %q", k, got, v)
		}
	}
	// one-context's networkd and NetworkManager renderers split
	// ETHx_ROUTES on commas and take words one and three of each entry.
	need(t, "bash")
	routes := run(t, dir, "bash", "-c", `. ./context.sh; IFS=',' read -r -a rs <<< "$ETH0_ROUTES"; for r in "${rs[@]}"; do w=( $r ); echo "${w[0]}>${w[2]}"; done`)
	if routes != "10.0.0.0/8>192.0.2.254\n198.51.100.0/24>192.0.2.253\n" {
		t.Errorf("one-context's reading of ETH0_ROUTES: %q", routes)
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Errorf("sourcing context.sh ran a command substitution")
	}
	got := python(t, `
import json, sys
from cloudinit.sources import DataSourceOpenNebula as ds
class Networking:
    def is_physical(self, name): return True
class Distro:
    networking = Networking()
r = ds.read_context_disk_dir(sys.argv[1], Distro())
net = ds.OpenNebulaNetwork(r["metadata"], Distro(), system_nics_by_mac={"52:54:00:12:34:56": "ens3"}).gen_conf()
print(json.dumps({"md": r["metadata"], "net": net}))
`, dir)
	md := got["md"].(map[string]any)
	if md["local-hostname"] != "vm1.example.com" || md["public-keys"].([]any)[0] != d.Keys[0].Keys[0] {
		t.Errorf("cloud-init's OpenNebula metadata: %v", md)
	}
	eth := got["net"].(map[string]any)["ethernets"].(map[string]any)["ens3"].(map[string]any)
	addrs := eth["addresses"].([]any)
	if addrs[0] != "192.0.2.10/24" || addrs[1] != "2001:db8::10/64" || eth["gateway4"] != "192.0.2.1" || eth["mtu"] != "1400" {
		t.Errorf("cloud-init's OpenNebula network for ens3: %v", eth)
	}
}

// TestReproducible: the same data gives the same bytes, built apart in
// time; another --timestamp gives other bytes, with isoinfo showing it.
func TestReproducible(t *testing.T) {
	need(t, "isoinfo")
	d := sample(t)
	files, err := Build(NoCloud, d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.iso"), filepath.Join(dir, "b.iso"), filepath.Join(dir, "c.iso")
	if err := Write(a, NoCloud, ISO9660, files, time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the scratch files' times now differ
	files2, _ := Build(NoCloud, d)
	if err := Write(b, NoCloud, ISO9660, files2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatalf("two builds of the same seed differ")
	}
	stamp := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := Write(c, NoCloud, ISO9660, files, stamp); err != nil {
		t.Fatal(err)
	}
	cb, _ := os.ReadFile(c)
	if bytes.Equal(ab, cb) {
		t.Fatal("the timestamp changed nothing")
	}
	if l := run(t, "", "isoinfo", "-R", "-l", "-i", c); !strings.Contains(l, "May  6 2024") || strings.Contains(l, "2000") {
		t.Errorf("listing with --timestamp:\n%s", l)
	}
	if l := run(t, "", "isoinfo", "-R", "-l", "-i", a); !strings.Contains(l, "Jan  1 2000") {
		t.Errorf("listing with the default time:\n%s", l)
	}
}

// TestWriteReplacesOnlyWhenComplete: a failed write leaves an existing
// output as it was and no temporary file behind.
func TestWriteReplacesOnlyWhenComplete(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "seed.iso")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{{Path: "meta-data", Data: []byte("instance-id: x\n")}}
	if err := Write(out, NoCloud, "ext4", files, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ext4: %v", err)
	}
	// a file and a directory of the same name cannot both be written
	bad := []File{{Path: "a", Data: []byte("x")}, {Path: "a/b", Data: []byte("y")}}
	if err := Write(out, NoCloud, ISO9660, bad, time.Time{}); err == nil {
		t.Fatal("conflicting paths written")
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatalf("output changed by a failed write: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := Write(out, NoCloud, ISO9660, files, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); bytes.Equal(b, []byte("old")) || len(b)%isoBlock != 0 {
		t.Fatalf("output not replaced: %d bytes", len(b))
	}
}

// TestRefusals: inputs that cannot be carried safely are refused with
// ErrInvalid before anything is written.
func TestRefusals(t *testing.T) {
	cases := map[string]struct {
		f   Format
		mod func(d *Data)
	}{
		"bad hostname":     {NoCloud, func(d *Data) { d.Hostname = "a b" }},
		"bad user":         {NoCloud, func(d *Data) { d.Keys[1].User = "Bad;User" }},
		"bad key":          {NoCloud, func(d *Data) { d.Keys[0].Keys = []string{"ssh-rsa nope"} }},
		"user twice":       {NoCloud, func(d *Data) { d.Keys[1].User = "root" }},
		"relative file":    {NoCloud, func(d *Data) { d.Files[0].Path = "etc/motd" }},
		"file twice":       {ConfigDrive, func(d *Data) { d.Files[1].Path = d.Files[0].Path }},
		"bad instance id":  {ConfigDrive, func(d *Data) { d.InstanceID = "../x" }},
		"password newline": {NoCloud, func(d *Data) { d.Password.Plain = "a\nb" }},
		"meta NUL": {OpenNebula, func(d *Data) {
			d.Keys = d.Keys[:1]
			d.Network[0].Routes = nil
			d.Meta = map[string]string{"A": "x\x00"}
		}},
		"one keys user":   {OpenNebula, func(d *Data) { d.Network[0].Routes = nil; d.Meta = nil }},
		"meta not a name": {OpenNebula, func(d *Data) { d.Keys = d.Keys[:1]; d.Network[0].Routes = nil; d.Meta = map[string]string{"a-b": "x"} }},
		"meta sets PATH": {OpenNebula, func(d *Data) {
			d.Keys = d.Keys[:1]
			d.Network[0].Routes = nil
			d.Meta = map[string]string{"PATH": "/x"}
		}},
		"meta sets ETH0_IP": {OpenNebula, func(d *Data) {
			d.Keys = d.Keys[:1]
			d.Network[0].Routes = nil
			d.Meta = map[string]string{"ETH0_IP": "x"}
		}},
		"no MAC for opennebula": {OpenNebula, func(d *Data) { d.Keys = d.Keys[:1]; d.Network[0].Routes = nil; d.Meta = nil; d.Network[0].HWAddr = nil }},
		"IPv6 route for opennebula": {OpenNebula, func(d *Data) {
			d.Keys, d.Meta = d.Keys[:1], nil
			d.Network[0].Routes = []inject.Route{{To: netip.MustParsePrefix("2001:db8:1::/48"), Via: netip.MustParseAddr("2001:db8::1")}}
		}},
		"file names collide": {OpenNebula, func(d *Data) {
			d.Keys = d.Keys[:1]
			d.Network[0].Routes = nil
			d.Meta = nil
			d.Files[1].Path = "/x/motd"
		}},
		"password for other user": {OpenNebula, func(d *Data) { d.Keys = d.Keys[1:]; d.Network[0].Routes = nil; d.Meta = nil }},
		"bad network":             {NoCloud, func(d *Data) { d.Network[0].Name = "e;reboot" }},
	}
	for name, c := range cases {
		d := sample(t)
		c.mod(d)
		if _, err := Build(c.f, d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// the baseline of the OpenNebula cases builds
	d := sample(t)
	d.Keys = d.Keys[:1]
	d.Network[0].Routes = nil
	if _, err := Build(OpenNebula, d); err != nil {
		t.Fatalf("baseline: %v", err)
	}
}
