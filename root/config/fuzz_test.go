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
				p.MemoryMiB < MinMemoryMiB || p.MemoryMiB > MaxMemoryMiB || p.VPs != 1 {
				t.Fatalf("accepted an invalid partition %+v", p)
			}
			names[p.Name] = true
		}
		c.Check(map[string]int{"k": 1})
	})
}
