package vtd

import "unsafe"

// tableView is a 4 KiB table page as the 512 entries ept edits. The page
// is 4 KiB aligned, so the uint64 view is aligned too.
func tableView(p *[4096]byte) *[512]uint64 {
	if p == nil {
		return nil
	}
	return (*[512]uint64)(unsafe.Pointer(p))
}
