package seed

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/guestinject/guestinject/inject"
)

// configDriveVersion is the dated metadata version written beside latest.
const configDriveVersion = "2018-08-27"

type cdFile struct {
	Path        string `json:"path"`
	ContentPath string `json:"content_path"`
}

type cdMeta struct {
	UUID             string            `json:"uuid"`
	Name             string            `json:"name,omitempty"`
	Hostname         string            `json:"hostname,omitempty"`
	LaunchIndex      int               `json:"launch_index"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	PublicKeys       map[string]string `json:"public_keys,omitempty"`
	Meta             map[string]string `json:"meta,omitempty"`
	Files            []cdFile          `json:"files,omitempty"`
}

// buildConfigDrive lays out config-2: openstack/{latest,2018-08-27}/
// meta_data.json, network_data.json, user_data; openstack/content/NNNN for
// the files; ec2/latest/meta-data.json.
func buildConfigDrive(d *Data) ([]File, error) {
	m := cdMeta{UUID: d.InstanceID, Name: d.Hostname, Hostname: d.Hostname, Meta: d.Meta}
	var all []string
	for _, uk := range d.Keys {
		all = append(all, uk.Keys...)
	}
	if len(all) > 0 {
		m.PublicKeys = map[string]string{}
		for i, k := range all {
			m.PublicKeys[fmt.Sprintf("key-%d", i)] = k
		}
	}
	var files []File
	for i, f := range d.Files {
		cp := fmt.Sprintf("/content/%04d", i)
		m.Files = append(m.Files, cdFile{Path: f.Path, ContentPath: cp})
		files = append(files, File{Path: "openstack" + cp, Data: f.Data})
	}
	meta, err := jsonFile(m)
	if err != nil {
		return nil, err
	}
	// The files travel in meta_data.json (nova's way); cloud-config's
	// write_files would write them a second time.
	ud, err := userData(&Data{InstanceID: d.InstanceID, Hostname: d.Hostname, Keys: d.Keys, Password: d.Password, UserData: d.UserData})
	if err != nil {
		return nil, err
	}
	net, err := jsonFile(networkData(d.Network))
	if err != nil {
		return nil, err
	}
	for _, v := range []string{"latest", configDriveVersion} {
		dir := "openstack/" + v + "/"
		files = append(files, File{Path: dir + "meta_data.json", Data: meta}, File{Path: dir + "network_data.json", Data: net})
		if ud != nil {
			files = append(files, File{Path: dir + "user_data", Data: ud})
		}
	}
	ec2 := map[string]any{"instance-id": d.InstanceID, "ami-launch-index": 0}
	if d.Hostname != "" {
		ec2["hostname"] = d.Hostname
		ec2["local-hostname"] = d.Hostname
	}
	if len(all) > 0 {
		pk := map[string]any{}
		for i, k := range all {
			pk[fmt.Sprintf("%d", i)] = map[string]string{"openssh-key": k}
		}
		ec2["public-keys"] = pk
	}
	e, err := jsonFile(ec2)
	if err != nil {
		return nil, err
	}
	files = append(files, File{Path: "ec2/latest/meta-data.json", Data: e})
	if ud != nil {
		files = append(files, File{Path: "ec2/latest/user-data", Data: ud})
	}
	return files, nil
}

func jsonFile(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return append(b, '\n'), nil
}

type ndLink struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	MAC  string `json:"ethernet_mac_address,omitempty"`
	MTU  int    `json:"mtu,omitempty"`
}

type ndRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

type ndNetwork struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Link      string    `json:"link"`
	IPAddress string    `json:"ip_address,omitempty"`
	Netmask   string    `json:"netmask,omitempty"`
	Routes    []ndRoute `json:"routes,omitempty"`
	DNS       []string  `json:"dns_nameservers,omitempty"`
	Search    []string  `json:"dns_search,omitempty"`
}

type ndService struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

type netData struct {
	Links    []ndLink    `json:"links"`
	Networks []ndNetwork `json:"networks"`
	Services []ndService `json:"services"`
}

// networkData renders the model as OpenStack's network_data.json: a link
// per interface (named, so cloud-init needs no MAC lookup), a network per
// address family, default gateways as 0.0.0.0/0 and ::/0 routes, name
// servers as dns services and on each network.
func networkData(ifs []inject.Interface) netData {
	nd := netData{Links: []ndLink{}, Networks: []ndNetwork{}, Services: []ndService{}}
	seenDNS := map[string]bool{}
	for i := range ifs {
		ifc := &ifs[i]
		link := ndLink{ID: ifc.Name, Name: ifc.Name, Type: "phy", MTU: ifc.MTU}
		if ifc.HWAddr != nil {
			link.MAC = strings.ToLower(ifc.HWAddr.String())
		}
		nd.Links = append(nd.Links, link)
		var dns []string
		for _, a := range ifc.DNS {
			dns = append(dns, a.String())
			if !seenDNS[a.String()] {
				seenDNS[a.String()] = true
				nd.Services = append(nd.Services, ndService{Type: "dns", Address: a.String()})
			}
		}
		add := func(family string, n ndNetwork) {
			n.ID = fmt.Sprintf("network-%s-%s", ifc.Name, family)
			n.Link = ifc.Name
			n.DNS, n.Search = dns, ifc.Search
			for _, r := range ifc.Routes {
				if r.Via.Is4() == (family == "ipv4") {
					n.Routes = append(n.Routes, ndRoute{r.To.Addr().String(), maskOf(r.To), r.Via.String()})
				}
			}
			nd.Networks = append(nd.Networks, n)
		}
		switch {
		case ifc.DHCP:
			add("ipv4", ndNetwork{Type: "ipv4_dhcp"})
		case ifc.Address.IsValid():
			n := ndNetwork{Type: "ipv4", IPAddress: ifc.Address.Addr().String(), Netmask: maskOf(ifc.Address)}
			if ifc.Gateway.IsValid() {
				n.Routes = append(n.Routes, ndRoute{"0.0.0.0", "0.0.0.0", ifc.Gateway.String()})
			}
			add("ipv4", n)
		}
		switch {
		case ifc.IPv6.DHCP:
			add("ipv6", ndNetwork{Type: "ipv6_dhcp"})
		case ifc.IPv6.Address.IsValid():
			n := ndNetwork{Type: "ipv6", IPAddress: ifc.IPv6.Address.Addr().String(), Netmask: maskOf(ifc.IPv6.Address)}
			if ifc.IPv6.Gateway.IsValid() {
				n.Routes = append(n.Routes, ndRoute{"::", "::", ifc.IPv6.Gateway.String()})
			}
			add("ipv6", n)
		}
	}
	return nd
}
