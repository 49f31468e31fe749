package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Parse reads the configuration in data; name is where it came from (a
// path, or the boot module's name) and starts every error message. The
// error, if any, is an Errors listing every problem found: a syntax error
// alone, or all the unknown keys and mistyped values, or all the values out
// of range.
func Parse(name string, data []byte) (*Config, error) {
	if name == "" {
		name = "configuration"
	}
	c := &Config{file: name, lines: map[string]int{}}
	w := walker{c: c, present: map[string]bool{}}
	if syntax := w.walk(data); syntax {
		return nil, c.syntaxError(data)
	}
	if err := w.errs.orNil(); err != nil {
		return nil, err
	}
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		return nil, c.decodeError(err, data)
	}
	if len(c.Partitions) != w.partitions {
		// The walk and the decoder disagree on the file's shape: a bug here,
		// but say something useful rather than validate the wrong thing.
		return nil, Errors{{File: name, Msg: "partition: cannot tell the [[partition]] tables apart; write one [[partition]] table per partition"}}
	}
	for i := range c.Partitions {
		c.Partitions[i].defaults(func(key string) bool { return w.present[fieldPath(i, key)] })
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaults fills in the keys the file left out.
func (p *Partition) defaults(present func(key string) bool) {
	if !present("vps") {
		p.VPs = 1
	}
	if !present("console") {
		p.Console = ConsoleCOM1
	}
	if !present("autostart") {
		p.Autostart = true
	}
	if !present("on_reboot") {
		p.OnReboot = OnRebootRestart
	}
	for j := range p.Disks {
		if !present(fmt.Sprintf("disk[%d].lun", j)) {
			p.Disks[j].LUN = j
		}
	}
}

// key is one key a [[partition]] table takes, and the TOML type of its value.
type key struct {
	name string
	kind unstable.Kind
}

var partitionKeys = []key{
	{"name", unstable.String},
	{"memory_mib", unstable.Integer},
	{"vps", unstable.Integer},
	{"kernel", unstable.String},
	{"kernel_format", unstable.String},
	{"initrd", unstable.String},
	{"cmdline", unstable.String},
	{"console", unstable.String},
	{"autostart", unstable.Bool},
	{"on_reboot", unstable.String},
	{"disk", unstable.Array}, // [[partition.disk]] tables, or an array of inline tables
}

var diskKeys = []key{
	{"module", unstable.String},
	{"controller", unstable.Integer},
	{"lun", unstable.Integer},
	{"read_only", unstable.Bool},
}

func diskKey(name string) (key, bool) {
	for _, k := range diskKeys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func diskKeyNames() string {
	s := make([]string, len(diskKeys))
	for i, k := range diskKeys {
		s[i] = k.name
	}
	return strings.Join(s, ", ")
}

func partitionKey(name string) (key, bool) {
	for _, k := range partitionKeys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func keyNames() string {
	s := make([]string, len(partitionKeys))
	for i, k := range partitionKeys {
		s[i] = k.name
	}
	return strings.Join(s, ", ")
}

// walker reads the file's syntax tree before it is decoded: it records the
// line of every partition and key (for errors), which keys are present (for
// defaults), and refuses unknown keys and tables and values of the wrong type.
type walker struct {
	c          *Config
	p          unstable.Parser
	errs       Errors
	present    map[string]bool
	partitions int
	disks      int            // [[partition.disk]] tables of the current partition
	seen       map[string]int // keys of the current table, to their line
	diskSeen   map[string]int // keys of the current disk table
}

// Where the key-values being read belong.
const (
	atTop  = -1 // before the first table header
	atSkip = -2 // inside a table already reported as wrong
)

// walk reads data; it returns true on a syntax error, which the decoder
// then reports with its position.
func (w *walker) walk(data []byte) (syntax bool) {
	w.p.Reset(data)
	cur := atTop
	disk := -1 // the [[partition.disk]] table being read, -1 in a partition's own table
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			keys, line := w.keys(e.Key())
			switch {
			case e.Kind == unstable.ArrayTable && len(keys) == 1 && keys[0] == "partition":
				cur, disk = w.newPartition(line), -1
			case e.Kind == unstable.ArrayTable && len(keys) == 2 && keys[0] == "partition" && keys[1] == "disk" && w.partitions > 0:
				cur = w.partitions - 1
				disk = w.newDisk(cur, line)
			case e.Kind == unstable.Table && len(keys) == 1 && keys[0] == "partition":
				w.errorf(line, "partition", "a single table; write [[partition]] (an array of tables), one per partition")
				cur = atSkip
			case e.Kind == unstable.Table && len(keys) == 2 && keys[0] == "partition" && keys[1] == "disk" && w.partitions > 0:
				w.errorf(line, fieldPath(w.partitions-1, "disk"), "a single table; write [[partition.disk]] (an array of tables), one per disk")
				cur = atSkip
			case keys[0] == "partition" && w.partitions > 0:
				w.errorf(line, fieldPath(w.partitions-1, strings.Join(keys[1:], ".")), "unknown table; a partition takes the keys %s", keyNames())
				cur = atSkip
			default:
				w.errorf(line, strings.Join(keys, "."), "unknown table; the file holds [[partition]] tables")
				cur = atSkip
			}
		case unstable.KeyValue:
			switch cur {
			case atSkip:
			case atTop:
				w.topKeyValue(e)
			default:
				if disk >= 0 {
					w.diskKeyValue(cur, disk, e)
				} else {
					w.keyValue(cur, e)
				}
			}
		}
	}
	return w.p.Error() != nil
}

// newPartition starts partition number w.partitions, whose table begins on line.
func (w *walker) newPartition(line int) int {
	i := w.partitions
	w.partitions++
	w.c.lines[fieldPath(i, "")] = line
	w.seen = map[string]int{}
	w.disks = 0
	return i
}

// newDisk starts disk number w.disks of partition i, whose table begins
// on line. The partition's own keys stay in w.seen; the disk's go in
// their own map.
func (w *walker) newDisk(i, line int) int {
	j := w.disks
	w.disks++
	if j == 0 {
		w.seen["disk"] = line
		w.c.lines[fieldPath(i, "disk")] = line
		w.present[fieldPath(i, "disk")] = true
	}
	w.c.lines[diskPath(i, j, "")] = line
	w.diskSeen = map[string]int{}
	return j
}

// diskKeyValue reads one key-value of partition i's disk j.
func (w *walker) diskKeyValue(i, j int, e *unstable.Node) {
	keys, line := w.keys(e.Key())
	path := diskPath(i, j, strings.Join(keys, "."))
	k, known := diskKey(keys[0])
	switch {
	case !known:
		w.errorf(line, path, "unknown key; a disk takes %s", diskKeyNames())
		return
	case len(keys) > 1:
		w.errorf(line, path, "%s is %s, not a table", k.name, kindName(k.kind))
		return
	}
	if first, dup := w.diskSeen[k.name]; dup {
		w.errorf(line, path, "set twice (first on line %d)", first)
		return
	}
	w.diskSeen[k.name] = line
	w.c.lines[path] = line
	w.present[path] = true
	if v := e.Value(); v.Kind != k.kind {
		w.errorf(line, path, "%s; want %s", kindName(v.Kind), kindName(k.kind))
	}
}

// inlineDisks reads "disk = [{...}, ...]" in partition i.
func (w *walker) inlineDisks(i, line int, v *unstable.Node) {
	it := v.Children()
	for it.Next() {
		t := it.Node()
		if t.Kind != unstable.InlineTable {
			w.errorf(line, fieldPath(i, "disk"), "an array holding %s; each disk is a table", kindName(t.Kind))
			continue
		}
		j := w.disks
		w.disks++
		w.c.lines[diskPath(i, j, "")] = line
		w.diskSeen = map[string]int{}
		kv := t.Children()
		for kv.Next() {
			if n := kv.Node(); n.Kind == unstable.KeyValue {
				w.diskKeyValue(i, j, n)
			}
		}
	}
}

// topKeyValue reads a key-value before any table header: only
// "partition = [{...}, ...]", an array of inline tables, belongs there.
func (w *walker) topKeyValue(e *unstable.Node) {
	keys, line := w.keys(e.Key())
	if len(keys) != 1 || keys[0] != "partition" {
		w.errorf(line, strings.Join(keys, "."), "unknown key; the file holds [[partition]] tables")
		return
	}
	v := e.Value()
	if v.Kind != unstable.Array {
		w.errorf(line, "partition", "%s; write [[partition]] tables, one per partition", kindName(v.Kind))
		return
	}
	it := v.Children()
	for it.Next() {
		t := it.Node()
		if t.Kind != unstable.InlineTable {
			w.errorf(line, "partition", "an array holding %s; each partition is a table", kindName(t.Kind))
			continue
		}
		i := w.newPartition(line)
		kv := t.Children()
		first := true
		for kv.Next() {
			if n := kv.Node(); n.Kind == unstable.KeyValue {
				if first {
					_, l := w.keys(n.Key())
					w.c.lines[fieldPath(i, "")] = l
					first = false
				}
				w.keyValue(i, n)
			}
		}
	}
}

// keyValue reads one key-value of partition i.
func (w *walker) keyValue(i int, e *unstable.Node) {
	keys, line := w.keys(e.Key())
	path := fieldPath(i, strings.Join(keys, "."))
	k, known := partitionKey(keys[0])
	switch {
	case !known:
		w.errorf(line, path, "unknown key; a partition takes %s", keyNames())
		return
	case len(keys) > 1:
		w.errorf(line, path, "%s is %s, not a table", k.name, kindName(k.kind))
		return
	}
	if first, dup := w.seen[k.name]; dup {
		w.errorf(line, path, "set twice (first on line %d)", first)
		return
	}
	w.seen[k.name] = line
	w.c.lines[path] = line
	w.present[path] = true
	v := e.Value()
	if v.Kind != k.kind {
		w.errorf(line, path, "%s; want %s", kindName(v.Kind), kindName(k.kind))
		return
	}
	if k.name == "disk" {
		w.inlineDisks(i, line, v)
	}
}

// keys returns a key's parts and the line it starts on.
func (w *walker) keys(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = w.p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	if len(parts) == 0 {
		parts = []string{""}
	}
	return parts, line
}

func (w *walker) errorf(line int, field, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.c.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean (true or false)"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	}
	return "a value of kind " + k.String()
}

// syntaxError is the decoder's account of a file the parser refused.
func (c *Config) syntaxError(data []byte) error {
	var scratch Config
	err := toml.Unmarshal(data, &scratch)
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return Errors{{File: c.file, Line: line, Msg: "TOML syntax: " + tomlMessage(de)}}
	}
	return Errors{{File: c.file, Msg: "TOML syntax error"}}
}

// decodeError turns what the decoder still refuses after the walk (values
// that do not fit their field, such as a negative memory size) into an
// error naming the field.
func (c *Config) decodeError(err error, data []byte) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return Errors{{File: c.file, Msg: "TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	line, _ := de.Position()
	field := ""
	if k := de.Key(); len(k) > 0 {
		last := k[len(k)-1]
		for path, l := range c.lines {
			if l == line && strings.HasSuffix(path, "."+last) {
				field = path
			}
		}
	}
	msg := tomlMessage(de)
	switch {
	case strings.HasSuffix(field, ".memory_mib"):
		msg = "out of range; " + memoryRule
	case strings.HasSuffix(field, ".vps"):
		msg = "out of range; " + vpsRule
	}
	return Errors{{File: c.file, Line: line, Field: field, Msg: msg}}
}

func tomlMessage(de *toml.DecodeError) string {
	return strings.TrimPrefix(de.Error(), "toml: ")
}
