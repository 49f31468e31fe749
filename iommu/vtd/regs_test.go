package vtd

import "testing"

// TestRegisterNumbers pins every offset and field against the VT-d
// specification's chapter 10 (revision 3.x).
func TestRegisterNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"VER_REG", VER_REG, 0x00},
		{"CAP_REG", CAP_REG, 0x08},
		{"ECAP_REG", ECAP_REG, 0x10},
		{"GCMD_REG", GCMD_REG, 0x18},
		{"GSTS_REG", GSTS_REG, 0x1c},
		{"RTADDR_REG", RTADDR_REG, 0x20},
		{"CCMD_REG", CCMD_REG, 0x28},
		{"FSTS_REG", FSTS_REG, 0x34},
		{"FECTL_REG", FECTL_REG, 0x38},
		{"IVA_REG (from IRO)", IVA_REG, 0x0},
		{"IOTLB_REG (from IRO)", IOTLB_REG, 0x8},
		{"fault record size", frcdSize, 16},
		{"GCMD_TE", GCMD_TE, 1 << 31},
		{"GCMD_SRTP", GCMD_SRTP, 1 << 30},
		{"GCMD_SFL", GCMD_SFL, 1 << 29},
		{"GCMD_EAFL", GCMD_EAFL, 1 << 28},
		{"GCMD_WBF", GCMD_WBF, 1 << 27},
		{"GCMD_QIE", GCMD_QIE, 1 << 26},
		{"GCMD_IRE", GCMD_IRE, 1 << 25},
		{"GCMD_SIRTP", GCMD_SIRTP, 1 << 24},
		{"GCMD_CFI", GCMD_CFI, 1 << 23},
		{"GSTS_TES", GSTS_TES, GCMD_TE},
		{"GSTS_RTPS", GSTS_RTPS, GCMD_SRTP},
		{"GSTS_FLS", GSTS_FLS, GCMD_SFL},
		{"GSTS_AFLS", GSTS_AFLS, GCMD_EAFL},
		{"GSTS_WBFS", GSTS_WBFS, GCMD_WBF},
		{"GSTS_QIES", GSTS_QIES, GCMD_QIE},
		{"GSTS_IRES", GSTS_IRES, GCMD_IRE},
		{"GSTS_IRTPS", GSTS_IRTPS, GCMD_SIRTP},
		{"GSTS_CFIS", GSTS_CFIS, GCMD_CFI},
		// 10.4.4: "status & 0x96FFFFFF" keeps every bit but the one-shot
		// SRTP, SFL, WBF and SIRTP.
		{"one-shot mask", ^uint64(gcmdOneShot) & 0xffffffff, 0x96ffffff},
		{"RTADDR_RTA", RTADDR_RTA, 0xffff_ffff_ffff_f000},
		{"RTADDR TTM", RTADDR_TTM_Shift, 10},
		{"CCMD_ICC", CCMD_ICC, 1 << 63},
		{"CCMD CIRG", CCMD_CIRG_Shift, 61},
		{"CCMD CAIG", CCMD_CAIG_Shift, 59},
		{"IOTLB_IVT", IOTLB_IVT, 1 << 63},
		{"IOTLB IIRG", IOTLB_IIRG_Shift, 60},
		{"IOTLB IAIG", IOTLB_IAIG_Shift, 57},
		{"IOTLB_DR", IOTLB_DR, 1 << 49},
		{"IOTLB_DW", IOTLB_DW, 1 << 48},
		{"FSTS_PFO", FSTS_PFO, 1 << 0},
		{"FSTS_PPF", FSTS_PPF, 1 << 1},
		{"FSTS_AFO", FSTS_AFO, 1 << 2},
		{"FSTS_APF", FSTS_APF, 1 << 3},
		{"FSTS_IQE", FSTS_IQE, 1 << 4},
		{"FSTS_ICE", FSTS_ICE, 1 << 5},
		{"FSTS_ITE", FSTS_ITE, 1 << 6},
		{"FSTS FRI", FSTS_FRI_Shift, 8},
		{"FECTL_IM", FECTL_IM, 1 << 31},
		{"FECTL_IP", FECTL_IP, 1 << 30},
		{"FRCD_FI", FRCD_FI, 0xffff_ffff_ffff_f000},
		{"FRCD SID (bits 79:64)", FRCD_SID_Mask, 0xffff},
		{"FRCD FR (bits 103:96)", FRCD_FR_Shift + 64, 96},
		{"FRCD_T (bit 126)", FRCD_T, 1 << (126 - 64)},
		{"FRCD_F (bit 127)", FRCD_F, 1 << (127 - 64)},
		{"FRCD F dword", frcdFDwordOffset, 12},
		{"root entry size", rootEntrySize, 16},
		{"root table entries (one per bus)", rootTableEntries, 256},
		{"root table size", rootEntrySize * rootTableEntries, 4096},
		{"root entry P", RootEntry_P, 1},
		{"CAP DRD", capDRD, 1 << 55},
		{"CAP DWD", capDWD, 1 << 54},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestDecodeCapQEMU decodes QEMU 7.2's intel-iommu CAP_REG and ECAP_REG
// as the image reads them (q35, -device intel-iommu).
func TestDecodeCapQEMU(t *testing.T) {
	c := DecodeCap(qemuCap)
	want := Cap{Raw: qemuCap, Domains: 65536, SAGAW: 0x2, MGAW: 39, FROffset: 0x220, PSI: true, NFR: 1}
	if c != want {
		t.Errorf("cap %#x:\n got %+v\nwant %+v", qemuCap, c, want)
	}
	e := DecodeECap(qemuECap)
	if wantE := (ECap{Raw: qemuECap, QI: true, IR: true, PT: true, IROOffset: 0xf0}); e != wantE {
		t.Errorf("ecap %#x:\n got %+v\nwant %+v", qemuECap, e, wantE)
	}
}

// TestDecodeCapFields sets each field alone.
func TestDecodeCapFields(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want Cap
	}{
		{0, Cap{Domains: 16, MGAW: 1, NFR: 1}},
		{2, Cap{Domains: 256, MGAW: 1, NFR: 1}},
		{1 << 4, Cap{RWBF: true, Domains: 16, MGAW: 1, NFR: 1}},
		{1 << 7, Cap{CM: true, Domains: 16, MGAW: 1, NFR: 1}},
		{0x1f << 8, Cap{SAGAW: 0x1f, Domains: 16, MGAW: 1, NFR: 1}},
		{47 << 16, Cap{Domains: 16, MGAW: 48, NFR: 1}},
		{0x3ff << 24, Cap{Domains: 16, MGAW: 1, FROffset: 0x3ff0, NFR: 1}},
		{0xff << 40, Cap{Domains: 16, MGAW: 1, NFR: 256}},
	} {
		c.want.Raw = c.v
		if got := DecodeCap(c.v); got != c.want {
			t.Errorf("DecodeCap(%#x) = %+v, want %+v", c.v, got, c.want)
		}
	}
	if e := DecodeECap(0x3ff<<8 | 1<<43 | 1<<3 | 1<<4 | 1<<7 | 1<<2 | 1); e != (ECap{Raw: e.Raw, C: true, IROOffset: 0x3ff0, SMTS: true, IR: true, EIM: true, SC: true, DT: true}) {
		t.Errorf("DecodeECap: %+v", e)
	}
}

func TestExtent(t *testing.T) {
	if got := Extent(DecodeCap(qemuCap), DecodeECap(qemuECap)); got != 0x1000 {
		t.Errorf("QEMU: %#x", got)
	}
	// The largest offsets: 256 records at 0x3ff0, the IOTLB at 0x3ff0.
	if got := Extent(DecodeCap(0xff<<40|0x3ff<<24), DecodeECap(0x3ff<<8)); got != 0x5000 {
		t.Errorf("largest: %#x", got)
	}
}

// TestDomainNumbers pins the context entry (VT-d 9.3), root entry (9.1)
// and selective invalidation fields (10.4.7, 10.4.8) domains use.
func TestDomainNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"context entry size", contextEntrySize, 16},
		{"context entry P", ContextEntry_P, 1 << 0},
		{"context entry FPD", ContextEntry_FPD, 1 << 1},
		{"context entry TT (3:2)", ContextEntry_TT, 0xc},
		{"context entry SLPTPTR (63:12)", ContextEntry_SLPT, 0xffff_ffff_ffff_f000},
		{"context entry AW (66:64)", ContextEntry_AW, 7},
		{"context entry DID (87:72)", ContextEntry_DIDShift, 8},
		{"AW 39-bit", AW39, 1},
		{"AW 48-bit", AW48, 2},
		{"root entry CTP", RootEntry_CTP, 0xffff_ffff_ffff_f000},
		{"CCMD domain-selective", CCMD_Domain, 2},
		{"CCMD device-selective", CCMD_Device, 3},
		{"CCMD SID (31:16)", CCMD_SID_Shift, 16},
		{"CCMD FM (33:32)", CCMD_FM_Shift, 32},
		{"IOTLB domain-selective", IOTLB_Domain, 2},
		{"IOTLB page-selective", IOTLB_Page, 3},
		{"IOTLB DID (47:32)", IOTLB_DID_Shift, 32},
		{"IVA AM (5:0)", IVA_AM_Mask, 0x3f},
		{"IVA IH", IVA_IH, 1 << 6},
		{"CAP MAMV (53:48)", capMAMVShift, 48},
		{"CAP SLLPS 2 MiB", capSLLPS2M, 1 << 34},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestQueueNumbers pins the queued invalidation registers (10.4.22-24)
// and descriptor fields (6.5.2.2, 6.5.2.3, 6.5.2.8).
func TestQueueNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"IQH_REG", IQH_REG, 0x80},
		{"IQT_REG", IQT_REG, 0x88},
		{"IQA_REG", IQA_REG, 0x90},
		{"QH/QT (18:4)", IQ_Offset, 0x7fff0},
		{"context-cache invalidate type", InvDesc_CC, 1},
		{"IOTLB invalidate type", InvDesc_IOTLB, 2},
		{"invalidation wait type", InvDesc_Wait, 5},
		{"granularity (5:4)", InvDesc_G_Shift, 4},
		{"DID (31:16)", InvDesc_DID, 16},
		{"SID (47:32)", InvDesc_SID, 32},
		{"FM (49:48)", InvDesc_FM, 48},
		{"IOTLB DW", InvDesc_DW, 1 << 6},
		{"IOTLB DR", InvDesc_DR, 1 << 7},
		{"wait SW", InvDesc_Wait_SW, 1 << 5},
		{"wait FN", InvDesc_Wait_FN, 1 << 6},
		{"wait status data (63:32)", InvDesc_Wait_SD, 32},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	// A device-selective context-cache request and a page-selective
	// IOTLB one, as descriptors.
	if d := contextDescriptor(uint64(CCMD_Device)<<CCMD_CIRG_Shift | 0x18<<CCMD_SID_Shift | 7); d != [2]uint64{0x1 | 3<<4 | 7<<16 | 0x18<<32, 0} {
		t.Errorf("context descriptor %#x", d)
	}
	if d := iotlbDescriptor(uint64(IOTLB_Page)<<IOTLB_IIRG_Shift|5<<IOTLB_DID_Shift|IOTLB_DR|IOTLB_DW, 0x5000|1); d != [2]uint64{0x2 | 3<<4 | 1<<6 | 1<<7 | 5<<16, 0x5001} {
		t.Errorf("IOTLB descriptor %#x", d)
	}
}
