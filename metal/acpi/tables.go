package acpi

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// System Description Table Header, ACPI 6.5 5.2.6.
const (
	HeaderLen = 36

	// MaxTableLen bounds a table's Length field; real tables are at most
	// a few hundred KiB (large DSDTs), so more means a corrupt header.
	MaxTableLen = 16 << 20

	// maxRootEntries bounds the entries Load follows from the RSDT/XSDT.
	maxRootEntries = 1024
)

// Header is the header every system description table (but the FACS)
// begins with.
type Header struct {
	Signature       string // 4 bytes, e.g. "APIC"
	Length          uint32 // the whole table, header included
	Revision        uint8
	Checksum        uint8
	OEMID           string
	OEMTableID      string
	OEMRevision     uint32
	CreatorID       string // 4-byte vendor ID of the tool that made the table
	CreatorRevision uint32
}

// ParseHeader decodes a table header. It does not check Length against
// len(b) or the checksum; ParseTable does.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("acpi: table header: %d bytes, need %d: %w", len(b), HeaderLen, ErrTruncated)
	}
	le := binary.LittleEndian
	return Header{
		Signature:       string(b[0:4]),
		Length:          le.Uint32(b[4:8]),
		Revision:        b[8],
		Checksum:        b[9],
		OEMID:           trimOEM(b[10:16]),
		OEMTableID:      trimOEM(b[16:24]),
		OEMRevision:     le.Uint32(b[24:28]),
		CreatorID:       trimOEM(b[28:32]),
		CreatorRevision: le.Uint32(b[32:36]),
	}, nil
}

// Table is one validated system description table.
type Table struct {
	Header
	Address uint64 // physical address it was read from
	Data    []byte // all Length bytes, header included
}

// ParseTable validates a table held in b: a header, a Length within
// [HeaderLen, MaxTableLen] and no more than len(b), and a zero checksum over
// Length bytes. The returned Table's Data is b[:Length] (not copied).
func ParseTable(b []byte) (Table, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Table{}, err
	}
	if err := checkLength(h); err != nil {
		return Table{}, err
	}
	if uint64(h.Length) > uint64(len(b)) {
		return Table{}, fmt.Errorf("acpi: %s: Length %d but only %d bytes: %w", sigName(h.Signature), h.Length, len(b), ErrTruncated)
	}
	if s := sum8(b[:h.Length]); s != 0 {
		return Table{}, fmt.Errorf("acpi: %s: checksum over %d bytes is %#02x, want 0: %w", sigName(h.Signature), h.Length, s, ErrChecksum)
	}
	return Table{Header: h, Data: b[:h.Length]}, nil
}

func checkLength(h Header) error {
	if h.Length < HeaderLen || h.Length > MaxTableLen {
		return fmt.Errorf("acpi: %s: Length %d outside [%d, %d]: %w", sigName(h.Signature), h.Length, HeaderLen, MaxTableLen, ErrBadLength)
	}
	return nil
}

// ReadTable reads the table at pa from memory and validates it (see
// ParseTable). If want is not empty the signature must match it.
func ReadTable(mem Memory, pa uint64, want string) (Table, error) {
	var hb [HeaderLen]byte
	if err := mem.ReadAt(hb[:], pa); err != nil {
		return Table{}, fmt.Errorf("acpi: table header at %#x: %w: %w", pa, ErrTruncated, err)
	}
	h, _ := ParseHeader(hb[:])
	if want != "" && h.Signature != want {
		return Table{}, fmt.Errorf("acpi: table at %#x: signature %s, want %s: %w", pa, sigName(h.Signature), want, ErrSignature)
	}
	if err := checkLength(h); err != nil {
		return Table{}, fmt.Errorf("acpi: table at %#x: %w", pa, err)
	}
	b := make([]byte, h.Length)
	if err := mem.ReadAt(b, pa); err != nil {
		return Table{}, fmt.Errorf("acpi: %s at %#x: Length %d: %w: %w", sigName(h.Signature), pa, h.Length, ErrTruncated, err)
	}
	t, err := ParseTable(b)
	if err != nil {
		return Table{}, fmt.Errorf("acpi: table at %#x: %w", pa, err)
	}
	t.Address = pa
	return t, nil
}

// Tables is what Load found: the root table and every valid table it
// leads to.
type Tables struct {
	RSDP RSDP
	Root Table // the RSDT or the XSDT

	// List holds the tables the root table points to, in its order,
	// followed by the DSDT the FADT points to. The FACS (no header, no
	// checksum) is not listed; see FADT.FirmwareCtrl.
	List []Table

	// Invalid records, in order, each table that failed validation and
	// was left out of List. Firmware with one broken table still boots.
	Invalid []error
}

// Load reads the root table the RSDP points to (XSDT for revision 2 and
// later when XsdtAddress is set, else RSDT), validates it and every table
// it lists, then adds the DSDT named by the FADT. An error means the root
// table itself is unusable; a bad listed table only lands in Invalid.
func Load(mem Memory, rsdp RSDP) (*Tables, error) {
	sig, pa := rsdp.RootTable()
	if pa == 0 {
		return nil, fmt.Errorf("acpi: RSDP names no %s: %w", sig, ErrNotFound)
	}
	root, err := ReadTable(mem, pa, sig)
	if err != nil {
		return nil, err
	}
	addrs, err := rootEntries(root)
	if err != nil {
		return nil, err
	}
	t := &Tables{RSDP: rsdp, Root: root}
	for i, a := range addrs {
		if a == 0 {
			t.Invalid = append(t.Invalid, fmt.Errorf("acpi: %s entry %d: null address: %w", sig, i, ErrNotFound))
			continue
		}
		tab, err := ReadTable(mem, a, "")
		if err != nil {
			t.Invalid = append(t.Invalid, fmt.Errorf("acpi: %s entry %d: %w", sig, i, err))
			continue
		}
		t.List = append(t.List, tab)
	}
	if facp, ok := t.Find(SigFADT); ok {
		if f, err := ParseFADT(facp.Data); err != nil {
			t.Invalid = append(t.Invalid, err)
		} else if f.DSDTAddress != 0 && !t.listed(f.DSDTAddress) {
			if dsdt, err := ReadTable(mem, f.DSDTAddress, SigDSDT); err != nil {
				t.Invalid = append(t.Invalid, fmt.Errorf("acpi: DSDT named by the FADT: %w", err))
			} else {
				t.List = append(t.List, dsdt)
			}
		}
	}
	return t, nil
}

func (t *Tables) listed(pa uint64) bool {
	for _, tab := range t.List {
		if tab.Address == pa {
			return true
		}
	}
	return false
}

// rootEntries decodes the physical addresses an RSDT (32-bit entries) or
// XSDT (64-bit entries, not naturally aligned) lists, ACPI 6.5 5.2.7, 5.2.8.
func rootEntries(root Table) ([]uint64, error) {
	size := 4
	if root.Signature == "XSDT" {
		size = 8
	}
	body := root.Data[HeaderLen:]
	n := len(body) / size
	if n > maxRootEntries {
		return nil, fmt.Errorf("acpi: %s lists %d tables, more than %d: %w", root.Signature, n, maxRootEntries, ErrBadLength)
	}
	addrs := make([]uint64, n)
	for i := range addrs {
		e := body[i*size:]
		if size == 8 {
			addrs[i] = binary.LittleEndian.Uint64(e)
		} else {
			addrs[i] = uint64(binary.LittleEndian.Uint32(e))
		}
	}
	return addrs, nil
}

// Table signatures, ACPI 6.5 5.2.6.
const (
	SigMADT = "APIC"
	SigFADT = "FACP"
	SigDSDT = "DSDT"
	SigSSDT = "SSDT"
	SigHPET = "HPET"
	SigMCFG = "MCFG"
	SigFACS = "FACS"
	SigDMAR = "DMAR" // Intel VT-d
	SigIVRS = "IVRS" // AMD-Vi
)

// Find returns the first table with the signature.
func (t *Tables) Find(sig string) (Table, bool) {
	for _, tab := range t.List {
		if tab.Signature == sig {
			return tab, true
		}
	}
	return Table{}, false
}

// FindAll returns every table with the signature (e.g. all SSDTs).
func (t *Tables) FindAll(sig string) []Table {
	var out []Table
	for _, tab := range t.List {
		if tab.Signature == sig {
			out = append(out, tab)
		}
	}
	return out
}

func (t *Tables) need(sig string) (Table, error) {
	tab, ok := t.Find(sig)
	if !ok {
		return Table{}, fmt.Errorf("acpi: no %s table: %w", sig, ErrNotFound)
	}
	return tab, nil
}

// MADT parses the first MADT ("APIC").
func (t *Tables) MADT() (*MADT, error) {
	tab, err := t.need(SigMADT)
	if err != nil {
		return nil, err
	}
	return ParseMADT(tab.Data)
}

// FADT parses the first FADT ("FACP").
func (t *Tables) FADT() (*FADT, error) {
	tab, err := t.need(SigFADT)
	if err != nil {
		return nil, err
	}
	return ParseFADT(tab.Data)
}

// HPET parses the first HPET description table.
func (t *Tables) HPET() (*HPET, error) {
	tab, err := t.need(SigHPET)
	if err != nil {
		return nil, err
	}
	return ParseHPET(tab.Data)
}

// DMAR parses the first DMA Remapping Reporting table (Intel VT-d).
func (t *Tables) DMAR() (*DMAR, error) {
	tab, err := t.need(SigDMAR)
	if err != nil {
		return nil, err
	}
	return ParseDMAR(tab.Data)
}

// IVRS parses the first I/O Virtualization Reporting Structure (AMD-Vi).
func (t *Tables) IVRS() (*IVRS, error) {
	tab, err := t.need(SigIVRS)
	if err != nil {
		return nil, err
	}
	return ParseIVRS(tab.Data)
}

// S5 finds \_S5_ in the DSDT, then in each SSDT.
func (t *Tables) S5() (slpTypA, slpTypB uint8, err error) {
	dsdt, err := t.need(SigDSDT)
	if err != nil {
		return 0, 0, err
	}
	a, b, err := S5(dsdt.Data)
	if err == nil {
		return a, b, nil
	}
	for _, ssdt := range t.FindAll(SigSSDT) {
		if a, b, err2 := S5(ssdt.Data); err2 == nil {
			return a, b, nil
		}
	}
	return 0, 0, err
}

// PowerOff is how to enter the S5 (soft-off) sleep state through the fixed
// hardware PM1 control registers, ACPI 6.5 7.4.2 and chapter 16: write
// SLP_TYPx<<10 | SLP_EN (bit 13) to PM1a_CNT, and to PM1b_CNT when present.
type PowerOff struct {
	PM1aCnt, PM1bCnt uint16 // I/O ports; PM1bCnt is 0 when there is no PM1b block
	SlpTypA, SlpTypB uint8  // 3-bit SLP_TYP values
}

// PowerOff combines the FADT's PM1 control blocks with \_S5_. It fails on
// hardware-reduced platforms and when a PM1 control block is not in I/O
// space.
func (t *Tables) PowerOff() (PowerOff, error) {
	f, err := t.FADT()
	if err != nil {
		return PowerOff{}, err
	}
	if f.Flags&FADTHWReducedACPI != 0 {
		return PowerOff{}, fmt.Errorf("acpi: hardware-reduced platform: no PM1 control block: %w", ErrNotFound)
	}
	a, ok := f.PM1aCnt.IOPort()
	if !ok {
		return PowerOff{}, fmt.Errorf("acpi: FADT PM1a_CNT_BLK %v is not an I/O port: %w", f.PM1aCnt, ErrNotFound)
	}
	var b uint16
	if !f.PM1bCnt.IsZero() {
		if b, ok = f.PM1bCnt.IOPort(); !ok {
			return PowerOff{}, fmt.Errorf("acpi: FADT PM1b_CNT_BLK %v is not an I/O port: %w", f.PM1bCnt, ErrNotFound)
		}
	}
	ta, tb, err := t.S5()
	if err != nil {
		return PowerOff{}, err
	}
	return PowerOff{PM1aCnt: a, PM1bCnt: b, SlpTypA: ta, SlpTypB: tb}, nil
}

// Summary renders what was found on one line, for the boot log; under
// QEMU -M pc -smp 2:
//
//	ACPI: RSDT, 5 tables (FACP APIC HPET WAET DSDT), 2 CPUs, 1 IOAPIC @0xfec00000 GSI 0,
//	5 overrides, HPET @0xfed00000, S5 0/0 via 0x604
func (t *Tables) Summary() string {
	var sb strings.Builder
	sb.WriteString("ACPI: ")
	sb.WriteString(t.Root.Signature)
	fmt.Fprintf(&sb, ", %d tables (", len(t.List))
	for i, tab := range t.List {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(sigName(tab.Signature))
	}
	sb.WriteByte(')')
	if len(t.Invalid) > 0 {
		fmt.Fprintf(&sb, ", %d invalid", len(t.Invalid))
	}
	if m, err := t.MADT(); err == nil {
		fmt.Fprintf(&sb, ", %s", plural(m.EnabledCPUs(), "CPU"))
		fmt.Fprintf(&sb, ", %s", plural(len(m.IOAPICs), "IOAPIC"))
		for i, io := range m.IOAPICs {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, " @%#x GSI %d", io.Address, io.GSIBase)
		}
		fmt.Fprintf(&sb, ", %s", plural(len(m.Overrides), "override"))
	}
	if h, err := t.HPET(); err == nil {
		fmt.Fprintf(&sb, ", HPET @%#x", h.Address.Address)
	}
	if p, err := t.PowerOff(); err == nil {
		fmt.Fprintf(&sb, ", S5 %d/%d via %#x", p.SlpTypA, p.SlpTypB, p.PM1aCnt)
	}
	return sb.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// sigName quotes a signature that is not four printable ASCII characters.
func sigName(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
