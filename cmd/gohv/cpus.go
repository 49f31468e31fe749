package main

import (
	"fmt"
	"runtime"
	"strings"

	"gohv/metal"
	"gohv/metal/acpi"
)

// startCPUs starts the processors the MADT lists as enabled, reports each
// one that did not start and the CPUs online, and lets the Go runtime use
// them all (GOMAXPROCS).
func startCPUs(madt *acpi.MADT) {
	var ids []uint32
	for _, c := range madt.CPUs() {
		if c.Enabled {
			ids = append(ids, c.APICID)
		}
	}
	var online []string
	online = append(online, "0 (boot)")
	for _, r := range metal.StartCPUs(ids) {
		if r.Err != nil {
			fmt.Printf("gohv: warning: cpu apic-id %d not started: %v\n", r.APICID, r.Err)
			continue
		}
		online = append(online, fmt.Sprintf("%d (apic-id %d)", r.CPU, r.APICID))
	}
	n := metal.CPUCount()
	runtime.GOMAXPROCS(n)
	fmt.Printf("gohv: metal: %d cpus online: %s\n", n, strings.Join(online, ", "))
}
