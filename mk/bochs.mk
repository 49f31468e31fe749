# Intel VT-x under Bochs 2.7 (tools/bochs, tools/bochstest). Bochs has no
# -kernel: each boot builds a GRUB ISO for its kernel command line (GRUB,
# xorriso and mtools as for the boot media) and boots it as a CD-ROM. Needs
# bochs, bochsbios and vgabios (Debian).
#
#   make test-bochs   selftest, hvtest and the default configuration (part of `make test`)
#   make bench-bochs  the `bench` measures and issue 15's peer loop (`bench=peer`)
#                     in Bochs guest TSC cycles (part of `make bench`)
#   make run-bochs    boot the default configuration, serial console on stdout
#                     and its input on stdin;
#                     BOCHS_APPEND=selftest (or hvtest, bench) boots with those words

BOCHS_APPEND ?=

.PHONY: test-bochs bench-bochs run-bochs

test-bochs: image
	$(GO) test -count=1 -timeout 30m ./tools/bochstest -image $(CURDIR)/$(IMAGE) \
		-guest-cache $(CURDIR)/$(GUEST_DIR) -v

bench-bochs: image
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./tools/bochstest -image $(CURDIR)/$(IMAGE)

run-bochs: image
	$(GO) run ./cmd/gohvctl bochs -input -kernel $(IMAGE) -append '$(BOCHS_APPEND)'

test: test-bochs

bench: bench-bochs
