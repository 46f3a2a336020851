package seed

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"sort"
	"strings"

	"github.com/guestinject/guestinject/inject"
	"github.com/guestinject/guestinject/inject/crypt"
)

// q quotes s as a YAML double-quoted scalar (JSON's string syntax is a
// subset of it).
func q(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// passwordHash is p's crypt(3) hash: Hash as given, or sha512-crypt of
// Plain with a 16-character salt derived from the instance id and the
// password (reproducible; a new instance id gives a new salt).
func passwordHash(p *Password, iid string) (string, error) {
	if p.Hash != "" {
		return p.Hash, nil
	}
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte("guestinject-seed-salt\x00" + iid + "\x00" + userOf(p.User) + "\x00" + p.Plain))
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	h, err := crypt.HashSetting(p.Plain, "$6$"+string(salt))
	if err != nil {
		return "", fmt.Errorf("%w: password: %w", ErrInvalid, err)
	}
	return h, nil
}

// cloudConfig renders the #cloud-config for d, or nil when d asks for
// nothing cloud-config carries (hostname, keys, password, files).
func cloudConfig(d *Data) ([]byte, error) {
	if d.Hostname == "" && len(d.Keys) == 0 && d.Password == nil && len(d.Files) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	if d.Hostname != "" {
		fmt.Fprintf(&b, "hostname: %s\n", q(d.Hostname))
		if strings.Contains(d.Hostname, ".") {
			fmt.Fprintf(&b, "fqdn: %s\n", q(d.Hostname))
		}
	}
	if len(d.Keys) > 0 {
		for _, uk := range d.Keys {
			if userOf(uk.User) == "root" {
				// root's keys as given, not prefixed by cloud-init's
				// "Please login as the default user" command
				b.WriteString("disable_root: false\n")
			}
		}
		b.WriteString("users:\n  - default\n")
		for _, uk := range d.Keys {
			fmt.Fprintf(&b, "  - name: %s\n    ssh_authorized_keys:\n", q(userOf(uk.User)))
			for _, k := range uk.Keys {
				fmt.Fprintf(&b, "      - %s\n", q(k))
			}
		}
	}
	if d.Password != nil {
		h, err := passwordHash(d.Password, d.InstanceID)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "chpasswd:\n  expire: false\n  users:\n    - name: %s\n      password: %s\n      type: hash\n", q(userOf(d.Password.User)), q(h))
	}
	if len(d.Files) > 0 {
		b.WriteString("write_files:\n")
		for _, f := range d.Files {
			mode := "0644"
			if f.Mode != nil {
				mode = fmt.Sprintf("%#o", uint32(f.Mode.Perm()))
			}
			fmt.Fprintf(&b, "  - path: %s\n    encoding: b64\n    content: %s\n    owner: \"root:root\"\n    permissions: %s\n",
				q(f.Path), q(base64.StdEncoding.EncodeToString(f.Data)), q(mode))
		}
	}
	return []byte(b.String()), nil
}

// userDataType is the MIME type cloud-init gives user-data by its first
// line; "" for one it would not recognise.
func userDataType(ud []byte) string {
	for _, t := range []struct{ prefix, typ string }{
		{"#cloud-config-archive", "text/cloud-config-archive"},
		{"#cloud-config", "text/cloud-config"},
		{"#cloud-boothook", "text/cloud-boothook"},
		{"#include", "text/x-include-url"},
		{"#upstart-job", "text/upstart-job"},
		{"#part-handler", "text/part-handler"},
		{"## template: jinja", "text/jinja2"},
		{"#!", "text/x-shellscript"},
	} {
		if bytes.HasPrefix(ud, []byte(t.prefix)) {
			return t.typ
		}
	}
	return ""
}

// userData is the seed's user-data: the generated cloud-config, the
// user's own user-data passed through, or both as a MIME multipart
// message, ours first and theirs second with a Merge-Type that appends
// lists and merges maps, so a users: or write_files: of theirs adds to
// ours instead of replacing it.
func userData(d *Data) ([]byte, error) {
	ours, err := cloudConfig(d)
	if err != nil || len(d.UserData) == 0 {
		return ours, err
	}
	if ours == nil {
		return d.UserData, nil
	}
	typ := userDataType(d.UserData)
	if typ == "" {
		return nil, fmt.Errorf("%w: user-data: its first line names no type cloud-init knows (#cloud-config, #!, #include, #cloud-boothook, ...); cannot merge it with the generated #cloud-config", ErrInvalid)
	}
	if typ == "text/cloud-config-archive" || typ == "text/part-handler" {
		return nil, fmt.Errorf("%w: user-data: %s cannot be merged with the generated #cloud-config; give it without the flags that generate one", ErrInvalid, typ)
	}
	sum := sha256.Sum256(append(append([]byte{}, ours...), d.UserData...))
	boundary := "guestinject-" + hex.EncodeToString(sum[:12])
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n", boundary)
	part := func(typ, merge string, body []byte) {
		fmt.Fprintf(&b, "--%s\nContent-Type: %s; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n", boundary, typ)
		if merge != "" {
			fmt.Fprintf(&b, "Merge-Type: %s\n", merge)
		}
		b.WriteString("\n")
		enc := base64.StdEncoding.EncodeToString(body)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\n")
	}
	part("text/cloud-config", "", ours)
	merge := ""
	if typ == "text/cloud-config" {
		merge = "list(append)+dict(no_replace,recurse_list)+str()"
	}
	part(typ, merge, d.UserData)
	fmt.Fprintf(&b, "--%s--\n", boundary)
	return b.Bytes(), nil
}

// buildNoCloud lays out cidata: meta-data, user-data, network-config.
func buildNoCloud(d *Data) ([]File, error) {
	var md strings.Builder
	fmt.Fprintf(&md, "instance-id: %s\n", q(d.InstanceID))
	if d.Hostname != "" {
		fmt.Fprintf(&md, "local-hostname: %s\n", q(d.Hostname))
	}
	if len(d.Meta) > 0 {
		md.WriteString("meta:\n")
		for _, k := range sortedKeys(d.Meta) {
			fmt.Fprintf(&md, "  %s: %s\n", q(k), q(d.Meta[k]))
		}
	}
	files := []File{{Path: "meta-data", Data: []byte(md.String())}}
	ud, err := userData(d)
	if err != nil {
		return nil, err
	}
	if ud == nil {
		// NoCloud wants the file; an empty cloud-config does nothing
		ud = []byte("#cloud-config\n{}\n")
	}
	files = append(files, File{Path: "user-data", Data: ud})
	if len(d.Network) > 0 {
		files = append(files, File{Path: "network-config", Data: inject.RenderCloudInitNetwork(d.Network)})
	}
	return files, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// NoCloudFiles returns the NoCloud files for d, for writing inside a
// guest at /var/lib/cloud/seed/nocloud/.
func NoCloudFiles(d *Data) ([]File, error) { return Build(NoCloud, d) }

// maskOf is the dotted (IPv4) or colon (IPv6) netmask of p.
func maskOf(p netip.Prefix) string {
	bits := p.Bits()
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	a, _ := netip.AddrFromSlice(m)
	return a.String()
}

// GuestSeedDir is where cloud-init's NoCloud datasource looks first for a
// seed inside the guest.
const GuestSeedDir = "/var/lib/cloud/seed/nocloud"

// GuestFiles returns d's NoCloud files as files to inject at
// GuestSeedDir, mode 0600 (user-data may hold a password hash).
func GuestFiles(d *Data) ([]inject.File, error) {
	files, err := Build(NoCloud, d)
	if err != nil {
		return nil, err
	}
	mode := fs.FileMode(0o600)
	out := make([]inject.File, 0, len(files))
	for _, f := range files {
		out = append(out, inject.File{Path: GuestSeedDir + "/" + f.Path, Data: f.Data, Mode: &mode})
	}
	return out, nil
}
