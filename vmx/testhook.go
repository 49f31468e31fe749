package vmx

// BreakGuestStateForTest sets reserved bits in the guest TR access rights
// at the next full state load (a TR that is not a busy TSS fails the
// VM-entry guest-state checks). It is the backend's vcpu.StateBreaker test
// seam; production code never calls it.
func (v *VCPU) BreakGuestStateForTest() string {
	v.broken = "GUEST_TR_AR_BYTES"
	v.dirty = true
	return v.broken
}
