package vmx

import "encoding/binary"

// putMSREntry writes entry i of an MSR area at off: the MSR index, a
// reserved word, the value.
func putMSREntry(page *[4096]byte, off, i int, msr uint32, value uint64) {
	e := page[off+16*i:]
	binary.LittleEndian.PutUint32(e, msr)
	binary.LittleEndian.PutUint32(e[4:], 0)
	binary.LittleEndian.PutUint64(e[8:], value)
}

// putRevision writes the VMCS revision identifier at the start of a VMXON
// region or VMCS (SDM Vol. 3C 25.2), bit 31 clear.
func putRevision(page *[4096]byte, rev uint32) { binary.LittleEndian.PutUint32(page[:], rev) }
