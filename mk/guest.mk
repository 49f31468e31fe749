# A real Linux guest from Debian's packages (`gohvctl guest`, tools/debian):
# the current kernel through the linux-image-amd64 metapackage (never a
# pinned version) and busybox-static, fetched with `apt-get download` (no
# root needed) into build/guest/ on first use; later runs make no network
# request while the cache is complete. Needs apt and dpkg (dpkg-deb), which
# every Debian host has; elsewhere `gohvctl guest` takes -kernel and -busybox.
#
#   make guest           fetch (once), print the paths, and write the test
#                        initramfs build/guest/<release>/initramfs.cpio
#   make test-guest      the -debian tests: fetch for real (twice: the second
#                        must download nothing), Hyper-V modules out of the real
#                        package, and a bare QEMU boot of kernel + initramfs
#                        (part of `make test`)
#   make run-guest-bare  boot them under QEMU without gohv, console on stdout,
#                        and report the guest's "Run /init" time and the wall time

GUEST     := $(GO) run ./cmd/gohvctl guest

.PHONY: guest test-guest run-guest-bare

guest:
	$(GUEST) fetch -cache $(GUEST_DIR)
	$(GUEST) initramfs -cache $(GUEST_DIR)

test-guest:
	$(GO) test -count=1 -timeout 20m ./tools/debian -v -debian -cache $(CURDIR)/$(GUEST_DIR)

run-guest-bare:
	$(GUEST) run-bare -cache $(GUEST_DIR)

test: test-guest
