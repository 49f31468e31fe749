package bootmedia

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"
)

//go:embed grub.cfg.tmpl
var grubCfgText string

var grubCfgTemplate = template.Must(template.New("grub.cfg").Option("missingkey=error").Parse(grubCfgText))

// Medium names, used in the generated files and in errors.
const (
	MediumISO  = "iso"
	MediumPXE  = "pxe"
	MediumDisk = "disk"
)

// GrubConfig renders the grub.cfg for one medium.
func GrubConfig(c Config, medium string) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("grub.cfg: %w", err)
	}
	switch medium {
	case MediumISO, MediumPXE, MediumDisk:
	default:
		return nil, fmt.Errorf("grub.cfg: unknown medium %q", medium)
	}
	type module struct{ Name, Path, SumFile string }
	mods := make([]module, len(c.Modules))
	for i, n := range c.Modules {
		mods[i] = module{n, ModulePath(n), ModuleSumPath(n)}
	}
	data := struct {
		Config
		Medium  string
		COM     int
		Kernel  string
		SumFile string
		Entries []Entry
		Modules []module
	}{c, medium, c.SerialUnit + 1, KernelPath, SumPath, c.Entries(), mods}
	var b bytes.Buffer
	if err := grubCfgTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("grub.cfg: %w", err)
	}
	return b.Bytes(), nil
}
