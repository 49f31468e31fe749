package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: any bytes give a configuration or an error, never a panic; an
// error names the file on every line; an accepted configuration is valid.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("example.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(partition("a", "initrd = \"i\"", "vps = 2")))
	f.Add([]byte("partition = [{name = \"a\", memory_mib = 8, kernel = \"k\"}]\n"))
	f.Add([]byte("[partition]\n[[partition]]\nname = 'a\n"))
	f.Add([]byte(swtch("lan0", `root_address = "10.0.0.1/24"`) +
		partition("a", "[[partition.nic]]", `switch = "lan0"`, "[[partition.nic]]", `switch = "lan1"`, `mac = "02:AA:00:00:00:01"`) +
		swtch("lan1", `root_mac = "02:00:00:00:00:02"`) +
		partition("b", `nic = [{switch = "lan0"}, {switch = "lan1", mac = "00:15:5d:00:01:00"}]`)))
	f.Add([]byte("switch = [{name = \"s\", root_mac = \"00:15:5d:00:00:00\"}]\n" + partition("a", `nic = [{switch = "s"}]`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("a configuration and an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.toml:") {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			return
		}
		if len(c.Partitions) == 0 {
			t.Fatal("accepted a configuration without partitions")
		}
		names := map[string]bool{}
		for _, p := range c.Partitions {
			if CheckName(p.Name) != nil || names[p.Name] || CheckModuleName(p.Kernel) != nil ||
				p.MemoryMiB < MinMemoryMiB || p.MemoryMiB > MaxMemoryMiB || p.VPs < 1 || p.VPs > MaxVPs {
				t.Fatalf("accepted an invalid partition %+v", p)
			}
			names[p.Name] = true
		}
		switches := map[string]bool{}
		macs := map[string]bool{}
		mac := func(m string) {
			if got, msg := checkMAC(m, "mac"); got != m || macs[m] {
				t.Fatalf("accepted MAC %q: %s, or twice", m, msg)
			}
			macs[m] = true
		}
		for _, s := range c.Switches {
			if CheckSwitchName(s.Name) != nil || switches[s.Name] || s.RootAddress != "" && checkRootAddress(s.RootAddress) != "" {
				t.Fatalf("accepted an invalid switch %+v", s)
			}
			switches[s.Name] = true
			mac(s.RootMAC)
		}
		for _, p := range c.Partitions {
			if len(p.NICs) > MaxNICs {
				t.Fatalf("accepted %d NICs", len(p.NICs))
			}
			for _, n := range p.NICs {
				if !switches[n.Switch] {
					t.Fatalf("accepted a NIC on no switch: %+v", n)
				}
				mac(n.MAC)
			}
		}
		c.Check(map[string]int{"k": 1})
	})
}
