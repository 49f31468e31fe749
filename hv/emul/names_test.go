package emul

import (
	"testing"

	"gohv/x86"
)

// TestArchitecturalNumbers pins every package-x86 number the emulator and
// the walker depend on to the manual's value, written here independently,
// and checks that Access keeps its promise of sharing the #PF error-code
// bits (Walk builds the error code from it by masking).
func TestArchitecturalNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		// SDM Vol. 1 3.4.3.
		{"RFLAGS.CF", x86.RFLAGSCF, 0x1},
		{"RFLAGS.PF", x86.RFLAGSPF, 0x4},
		{"RFLAGS.AF", x86.RFLAGSAF, 0x10},
		{"RFLAGS.ZF", x86.RFLAGSZF, 0x40},
		{"RFLAGS.SF", x86.RFLAGSSF, 0x80},
		{"RFLAGS.TF", x86.RFLAGSTF, 0x100},
		{"RFLAGS.DF", x86.RFLAGSDF, 0x400},
		{"RFLAGS.OF", x86.RFLAGSOF, 0x800},
		{"RFLAGS.RF", x86.RFLAGSRF, 0x1_0000},
		{"RFLAGS.AC", x86.RFLAGSAC, 0x4_0000},
		// SDM Vol. 3A 2.5, 2.2.1.
		{"CR0.PE", x86.CR0PE, 0x1},
		{"CR0.WP", x86.CR0WP, 0x1_0000},
		{"CR0.PG", x86.CR0PG, 0x8000_0000},
		{"CR4.PSE", x86.CR4PSE, 0x10},
		{"CR4.PAE", x86.CR4PAE, 0x20},
		{"CR4.LA57", x86.CR4LA57, 0x1000},
		{"CR4.SMEP", x86.CR4SMEP, 0x10_0000},
		{"CR4.SMAP", x86.CR4SMAP, 0x20_0000},
		{"EFER.LME", x86.EFERLME, 0x100},
		{"EFER.LMA", x86.EFERLMA, 0x400},
		{"EFER.NXE", x86.EFERNXE, 0x800},
		// SDM Vol. 3A 4.3-4.5, Tables 4-14 to 4-20.
		{"P", x86.PTEPresent, 0x1},
		{"R/W", x86.PTEWrite, 0x2},
		{"U/S", x86.PTEUser, 0x4},
		{"A", x86.PTEAccessed, 0x20},
		{"D", x86.PTEDirty, 0x40},
		{"PS", x86.PTEPS, 0x80},
		{"XD", x86.PTENX, 0x8000_0000_0000_0000},
		// SDM Vol. 3A 4.7, Figure 4-12.
		{"#PF P", x86.PFErrPresent, 0x1},
		{"#PF W/R", x86.PFErrWrite, 0x2},
		{"#PF U/S", x86.PFErrUser, 0x4},
		{"#PF RSVD", x86.PFErrRsvd, 0x8},
		{"#PF I/D", x86.PFErrFetch, 0x10},
		// SDM Vol. 3A Table 6-1.
		{"#UD", x86.VectorUD, 6},
		{"#SS", x86.VectorSS, 12},
		{"#GP", x86.VectorGP, 13},
		{"#PF", x86.VectorPF, 14},
		// Access shares the error code's bits and RFLAGS.AC's.
		{"AccessWrite", uint64(AccessWrite), x86.PFErrWrite},
		{"AccessUser", uint64(AccessUser), x86.PFErrUser},
		{"AccessFetch", uint64(AccessFetch), x86.PFErrFetch},
		{"AccessAC", uint64(AccessAC), x86.RFLAGSAC},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
