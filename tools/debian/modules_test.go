package debian

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// testIndex: the Hyper-V storage driver's real dependency graph, a built-in
// module, a compressed one and a module whose dependency is missing.
var testIndex = moduleIndex{
	"hv_storvsc":        {name: "hv_storvsc", path: "kernel/drivers/scsi/hv_storvsc.ko", depends: []string{"scsi_mod", "hv_vmbus", "scsi_transport_fc", "scsi_common"}},
	"scsi_mod":          {name: "scsi_mod", path: "kernel/drivers/scsi/scsi_mod.ko", depends: []string{"scsi_common"}},
	"scsi_common":       {name: "scsi_common", path: "kernel/drivers/scsi/scsi_common.ko"},
	"scsi_transport_fc": {name: "scsi_transport_fc", path: "kernel/drivers/scsi/scsi_transport_fc.ko", depends: []string{"scsi_mod"}},
	"hv_vmbus":          {name: "hv_vmbus", path: "kernel/drivers/hv/hv_vmbus.ko"},
	"hv_utils":          {name: "hv_utils", path: "kernel/drivers/hv/hv_utils.ko", depends: []string{"hv_vmbus", "crc32c_generic"}},
	"crc32c_generic":    {name: "crc32c_generic", builtin: true},
	"ext4":              {name: "ext4", path: "kernel/fs/ext4/ext4.ko.xz", compressed: true},
	"orphan":            {name: "orphan", path: "kernel/orphan.ko", depends: []string{"gone"}},
	"loop_a":            {name: "loop_a", path: "kernel/a.ko", depends: []string{"loop_b"}},
	"loop_b":            {name: "loop_b", path: "kernel/b.ko", depends: []string{"loop_a"}},
}

func entryNames(es []moduleEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.name)
	}
	return n
}

func TestResolvePutsDependenciesFirst(t *testing.T) {
	got, err := testIndex.resolve([]string{"hv_storvsc", "hv-utils", "hv_vmbus"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"scsi_common", "scsi_mod", "hv_vmbus", "scsi_transport_fc", "hv_storvsc", "hv_utils"}
	if !reflect.DeepEqual(entryNames(got), want) {
		t.Errorf("load order %q, want %q", entryNames(got), want)
	}
}

func TestResolveErrorsSayWhoNeedsWhat(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"nosuch", "module nosuch: not in the kernel package"},
		{"orphan", "module gone (needed by orphan): not in the kernel package"},
		{"ext4", "module ext4: kernel/fs/ext4/ext4.ko.xz is compressed"},
		{"loop_a", "dependency cycle loop_a -> loop_b -> loop_a"},
	} {
		_, err := testIndex.resolve([]string{tc.name})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resolve(%s) = %v, want %q", tc.name, err, tc.want)
		}
	}
	if got, err := testIndex.resolve([]string{"crc32c_generic"}); err != nil || len(got) != 0 {
		t.Errorf("a built-in module resolved to %q, %v; want nothing to load", entryNames(got), err)
	}
}

func TestModuleIndexRoundTrips(t *testing.T) {
	var b bytes.Buffer
	if err := writeIndex(&b, testIndex); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"hv_storvsc\tkernel/drivers/scsi/hv_storvsc.ko\tscsi_mod,hv_vmbus,scsi_transport_fc,scsi_common\n",
		"crc32c_generic\tbuiltin\t-\n",
		"ext4\tkernel/fs/ext4/ext4.ko.xz\tcompressed\n",
		"scsi_common\tkernel/drivers/scsi/scsi_common.ko\t-\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("index lacks %q:\n%s", line, b.String())
		}
	}
	back, err := parseIndex(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, testIndex) {
		t.Errorf("read back %v\nwant %v", back, testIndex)
	}
}

func TestParseIndexRefusesBadLines(t *testing.T) {
	for _, s := range []string{
		"a\tb\n",
		"\tkernel/a.ko\t-\n",
		"a\t../../etc/passwd\t-\n",
		"a\t/abs.ko\t-\n",
	} {
		if _, err := parseIndex(strings.NewReader(s)); err == nil {
			t.Errorf("parseIndex(%q) did not fail", s)
		}
	}
}
