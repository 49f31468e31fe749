package svm

// BreakGuestStateForTest makes the next VMRUN fail its consistency checks
// by clearing EFER.SVME in the guest state (APM Vol. 2, 15.5.1). It is the
// backend's vcpu.StateBreaker test seam; production code never calls it.
func (v *VCPU) BreakGuestStateForTest() string {
	v.broken = true
	v.dirty = true
	return "EFER.SVME"
}
