package main

import (
	_ "embed"
	"fmt"
	"strings"

	"gohv/hv"
	"gohv/metal"
	"gohv/root/config"
	"gohv/root/manager"
)

//go:embed default.toml
var defaultConfig []byte

// partitionConsole is the root console for the manager: partition lines
// out, the user's typing in.
type partitionConsole struct{}

func (partitionConsole) Write(b []byte) (int, error)          { return serial.Write(b) }
func (partitionConsole) Add(name string, rx func([]byte) int) { consoleInput.Add(name, rx) }
func (partitionConsole) Remove(name string)                   { consoleInput.Remove(name) }
func (partitionConsole) SetShutdown(name string, f func(reboot bool)) {
	consoleInput.SetShutdown(name, f)
}

// runConfigured runs the partitions of the configuration the boot loader
// handed over (the module "config"), or of the embedded default. It
// reports false with a reason when gohv should fail; demo is true when the
// embedded default's modules are missing and the built-in demo should run
// instead.
func runConfigured() (ok bool, reason string, demo bool) {
	mods := map[string][]byte{}
	sizes := map[string]int{}
	for _, m := range metal.BootModules() {
		mods[m.Name], sizes[m.Name] = m.Data, len(m.Data)
	}
	name, text := "the embedded default configuration", defaultConfig
	if c, ok := mods[config.ModuleName]; ok {
		name, text = "the configuration module", c
	}
	cfg, err := config.Parse(name, text)
	if err != nil {
		return false, err.Error(), false
	}
	if err := cfg.Check(sizes); err != nil {
		if _, given := mods[config.ModuleName]; !given {
			fmt.Fprintf(serial, "gohv: the embedded configuration needs boot modules gohv was not given (%v): running the built-in demo partitions; `make run` fetches Debian's kernel\n", err)
			return false, "", true
		}
		return false, err.Error(), false
	}
	h, err := openHypervisor()
	if err != nil {
		return false, err.Error(), false
	}
	fmt.Fprintf(serial, "gohv: configuration from %s: %d partitions\n", name, len(cfg.Partitions))
	stop := make(chan struct{})
	defer close(stop)
	startConsoleInput(stop)
	m := manager.New(h, mods, partitionConsole{}, rootLog)
	if len(iommus) > 0 {
		m.SetAssigner(assignPCI)
	}
	if err := m.Start(cfg); err != nil {
		return false, err.Error(), false
	}
	var bad []string
	for part, r := range m.Wait() {
		if r.State != hv.StateStopped {
			bad = append(bad, fmt.Sprintf("%s %v", part, r))
		}
	}
	if len(bad) > 0 {
		return false, "partitions did not end cleanly: " + strings.Join(bad, "; "), false
	}
	return true, "", false
}
