# Boot media (`gohvctl media`, package tools/media/bootmedia): build/gohv.iso
# (hybrid ISO: CD and USB stick, BIOS and UEFI), build/pxe/ (TFTP root, GRUB
# netboot), build/gohv.img (raw GPT disk: BIOS boot partition and ESP). Needs
# grub-common, grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools (Debian).
#
# test-media builds the same media with the selftest entry as the default and
# no menu timeout into $(BUILD)/mediatest and boots each under QEMU
# (tools/mediatest); `make test` runs it.

MEDIA          := $(GO) run ./cmd/gohvctl media
MEDIA_TEST_DIR := $(BUILD)/mediatest

.PHONY: iso pxe disk media test-media

iso: image
	$(MEDIA) iso -kernel $(IMAGE) -out $(BUILD)/gohv.iso

pxe: image
	$(MEDIA) pxe -kernel $(IMAGE) -out $(BUILD)/pxe

disk: image
	$(MEDIA) disk -kernel $(IMAGE) -out $(BUILD)/gohv.img

media: iso pxe disk

test-media: image
	$(MEDIA) all -kernel $(IMAGE) -out $(MEDIA_TEST_DIR) -default selftest -timeout 0
	$(GO) test -count=1 -parallel 2 -timeout 30m ./tools/mediatest -v \
		-media-dir $(CURDIR)/$(MEDIA_TEST_DIR)

test: test-media
