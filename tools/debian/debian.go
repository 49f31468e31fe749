// Package debian gets a real Linux guest onto the host from Debian's
// packages at test time: the distribution's current kernel, its modules and
// a static busybox, never a pinned version (old kernels leave the archive).
//
// Cache.Fetch resolves the kernel through the linux-image-amd64
// metapackage: `apt-get download` (no root needed) fetches it, its control
// file's Depends names the versioned linux-image-<release> package, which is
// fetched in turn, and /boot/vmlinuz-<release> is taken out of it; the same
// for busybox-static's /bin/busybox. The package files stay in the cache, so
// Guest.Modules can later take out kernel modules with every module they
// depend on — read from each module's ELF .modinfo depends= string, since
// the package ships no modules.dep.
//
// Cache layout (Cache.Dir, build/guest by default):
//
//	debs/                       the .deb files, as apt-get download names them
//	<release>/manifest.json     package versions and files, with SHA-256
//	<release>/vmlinuz           /boot/vmlinuz-<release>
//	<release>/busybox           /bin/busybox from busybox-static
//	<release>/modules.index     name, path and depends of every module
//	<release>/lib/modules/<release>/kernel/...  modules Modules took out
//	current -> <release>
//
// A Fetch asks apt for the files' names and hashes from the local package
// lists (`--print-uris`) and downloads only what is missing or differs, so
// with a complete cache it makes no network request.
//
// The .deb archives are read with dpkg-deb, which every host with apt-get
// has: it turns control.tar.xz and data.tar.xz into plain tar streams that
// archive/tar reads, so the module needs no xz decoder.
package debian
