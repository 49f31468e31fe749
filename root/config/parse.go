package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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
	if len(c.Switches) != w.switches {
		return nil, Errors{{File: name, Msg: "switch: cannot tell the [[switch]] tables apart; write one [[switch]] table per switch"}}
	}
	for i := range c.Partitions {
		c.Partitions[i].defaults(i, func(key string) bool { return w.present[fieldPath(i, key)] })
	}
	for k := range c.Switches {
		if !w.present[switchPath(k, "root_mac")] {
			c.Switches[k].RootMAC = DefaultRootMAC(k)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaults fills in the keys the file left out of partition i.
func (p *Partition) defaults(i int, present func(key string) bool) {
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
	for j := range p.NICs {
		if !present(fmt.Sprintf("nic[%d].mac", j)) {
			p.NICs[j].MAC = DefaultNICMAC(i, j)
		}
	}
}

// key is one key a table takes, and the TOML type of its value.
type key struct {
	name string
	kind unstable.Kind
}

var partitionKeys = []key{
	{"name", unstable.String},
	{"memory_mib", unstable.Integer},
	{"vps", unstable.Integer},
	{"host_cpus", unstable.Array}, // host CPU indexes the VPs are pinned to, in turn
	{"kernel", unstable.String},
	{"kernel_format", unstable.String},
	{"initrd", unstable.String},
	{"cmdline", unstable.String},
	{"console", unstable.String},
	{"autostart", unstable.Bool},
	{"on_reboot", unstable.String},
	{"disk", unstable.Array}, // [[partition.disk]] tables, or an array of inline tables
	{"nic", unstable.Array},  // [[partition.nic]] tables, or an array of inline tables
	{"pci", unstable.Array},  // host PCI functions assigned to the partition: "bb:dd.f" strings
}

var diskKeys = []key{
	{"module", unstable.String},
	{"controller", unstable.Integer},
	{"lun", unstable.Integer},
	{"read_only", unstable.Bool},
}

var nicKeys = []key{
	{"switch", unstable.String},
	{"mac", unstable.String},
}

var switchKeys = []key{
	{"name", unstable.String},
	{"root_address", unstable.String},
	{"root_mac", unstable.String},
}

// table is a kind of table the file holds: the keys it takes, and what
// errors call one.
type table struct {
	noun string // "a partition takes ..."
	keys []key
}

var (
	partitionTable = &table{"partition", partitionKeys}
	switchTable    = &table{"switch", switchKeys}
	// subTables are the arrays of tables inside a partition, by key:
	// [[partition.disk]] and [[partition.nic]].
	subTables = map[string]*table{
		"disk": {"disk", diskKeys},
		"nic":  {"NIC", nicKeys},
	}
)

func (t *table) key(name string) (key, bool) {
	for _, k := range t.keys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

func (t *table) keyNames() string {
	s := make([]string, len(t.keys))
	for i, k := range t.keys {
		s[i] = k.name
	}
	return strings.Join(s, ", ")
}

// topRule is what the file holds, as errors about other tables and keys
// say.
const topRule = "the file holds [[partition]] and [[switch]] tables"

// walker reads the file's syntax tree before it is decoded: it records the
// line of every table and key (for errors), which keys are present (for
// defaults), and refuses unknown keys and tables and values of the wrong type.
type walker struct {
	c          *Config
	p          unstable.Parser
	errs       Errors
	present    map[string]bool
	partitions int
	switches   int
	subs       map[string]int // [[partition.disk]] and [[partition.nic]] tables of the current partition, by key
	seen       map[string]int // keys of the current partition's own table, to their line
	subSeen    map[string]int // keys of the current disk or NIC table
	switchSeen map[string]int // keys of the current switch table
	newlines   []int          // the offsets of data's '\n's, for lines
}

// Where the key-values being read belong, besides a partition's index.
const (
	atTop    = -1 // before the first table header
	atSkip   = -2 // inside a table already reported as wrong
	atSwitch = -3 // in the last [[switch]] table
)

// walk reads data; it returns true on a syntax error, which the decoder
// then reports with its position.
func (w *walker) walk(data []byte) (syntax bool) {
	w.p.Reset(data)
	// The parser's Shape counts the lines before an offset each time it is
	// asked, which makes a walk quadratic in the file's size.
	for i, b := range data {
		if b == '\n' {
			w.newlines = append(w.newlines, i)
		}
	}
	cur := atTop
	sub := "" // "disk" or "nic" in a partition's disk or NIC table; "" in its own
	j := 0    // which disk or NIC
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.ArrayTable, unstable.Table:
			cur, sub, j = w.header(e)
		case unstable.KeyValue:
			switch {
			case cur == atSkip:
			case cur == atTop:
				w.topKeyValue(e)
			case cur == atSwitch:
				w.switchKeyValue(w.switches-1, e)
			case sub != "":
				w.subKeyValue(cur, sub, j, e)
			default:
				w.partitionKeyValue(cur, e)
			}
		}
	}
	return w.p.Error() != nil
}

// header reads a table header and returns where the key-values after it
// belong: a partition's index (and, in a disk or NIC table, which one), or
// atSwitch, or atSkip.
func (w *walker) header(e *unstable.Node) (cur int, sub string, j int) {
	keys, line := w.keys(e.Key())
	array := e.Kind == unstable.ArrayTable
	last := w.partitions - 1
	switch {
	case keys[0] == "partition" && len(keys) == 1:
		if !array {
			w.errorf(line, "partition", "a single table; write [[partition]] (an array of tables), one per partition")
			return atSkip, "", 0
		}
		return w.newPartition(line), "", 0
	case keys[0] == "partition" && last >= 0:
		t := subTables[keys[1]]
		switch {
		case len(keys) == 2 && t != nil && array:
			return last, keys[1], w.newSub(last, keys[1], line)
		case len(keys) == 2 && t != nil:
			w.errorf(line, fieldPath(last, keys[1]), "a single table; write [[partition.%s]] (an array of tables), one per %s", keys[1], t.noun)
		default:
			w.errorf(line, fieldPath(last, strings.Join(keys[1:], ".")), "unknown table; a partition takes the keys %s", partitionTable.keyNames())
		}
		return atSkip, "", 0
	case keys[0] == "switch" && len(keys) == 1:
		if !array {
			w.errorf(line, "switch", "a single table; write [[switch]] (an array of tables), one per switch")
			return atSkip, "", 0
		}
		w.newSwitch(line)
		return atSwitch, "", 0
	case keys[0] == "switch" && w.switches > 0:
		w.errorf(line, switchPath(w.switches-1, strings.Join(keys[1:], ".")), "unknown table; a switch takes the keys %s", switchTable.keyNames())
		return atSkip, "", 0
	}
	w.errorf(line, strings.Join(keys, "."), "unknown table; %s", topRule)
	return atSkip, "", 0
}

// newPartition starts partition number w.partitions, whose table begins on line.
func (w *walker) newPartition(line int) int {
	i := w.partitions
	w.partitions++
	w.c.lines[fieldPath(i, "")] = line
	w.seen = map[string]int{}
	w.subs = map[string]int{}
	return i
}

// newSwitch starts switch number w.switches, whose table begins on line.
func (w *walker) newSwitch(line int) int {
	k := w.switches
	w.switches++
	w.c.lines[switchPath(k, "")] = line
	w.switchSeen = map[string]int{}
	return k
}

// newSub starts the next of partition i's disk or NIC tables (name is
// "disk" or "nic"), which begins on line, and returns its number. The
// partition's own keys stay in w.seen; the sub-table's go in their own map.
func (w *walker) newSub(i int, name string, line int) int {
	j := w.subs[name]
	w.subs[name]++
	if j == 0 {
		w.seen[name] = line
		w.c.lines[fieldPath(i, name)] = line
		w.present[fieldPath(i, name)] = true
	}
	w.c.lines[subPath(i, name, j, "")] = line
	w.subSeen = map[string]int{}
	return j
}

// keyValue reads one key-value of a t table that errors call base
// ("partition[0]", "partition[0].disk[1]", "switch[2]"); seen holds the
// keys the table set before. It returns the key's name, its value and its
// line when the key is known, set once and of its type.
func (w *walker) keyValue(t *table, base string, seen map[string]int, e *unstable.Node) (string, *unstable.Node, int, bool) {
	keys, line := w.keys(e.Key())
	path := base + "." + strings.Join(keys, ".")
	k, known := t.key(keys[0])
	switch {
	case !known:
		w.errorf(line, path, "unknown key; a %s takes %s", t.noun, t.keyNames())
		return "", nil, 0, false
	case len(keys) > 1:
		w.errorf(line, path, "%s is %s, not a table", k.name, kindName(k.kind))
		return "", nil, 0, false
	}
	if first, dup := seen[k.name]; dup {
		w.errorf(line, path, "set twice (first on line %d)", first)
		return "", nil, 0, false
	}
	seen[k.name] = line
	w.c.lines[path] = line
	w.present[path] = true
	v := e.Value()
	if v.Kind != k.kind {
		w.errorf(line, path, "%s; want %s", kindName(v.Kind), kindName(k.kind))
		return "", nil, 0, false
	}
	return k.name, v, line, true
}

// partitionKeyValue reads one key-value of partition i's own table.
func (w *walker) partitionKeyValue(i int, e *unstable.Node) {
	name, v, line, ok := w.keyValue(partitionTable, fieldPath(i, ""), w.seen, e)
	if t := subTables[name]; ok && t != nil {
		w.inlineSubs(i, name, t, line, v)
	}
	if ok && name == "host_cpus" {
		it := v.Children()
		for it.Next() {
			if k := it.Node().Kind; k != unstable.Integer {
				w.errorf(line, fieldPath(i, name), "an array holding %s; each host CPU is an integer index", kindName(k))
				return
			}
		}
	}
	if ok && name == "pci" {
		it := v.Children()
		for it.Next() {
			if k := it.Node().Kind; k != unstable.String {
				w.errorf(line, fieldPath(i, name), "an array holding %s; each PCI function is a string \"bb:dd.f\"", kindName(k))
				return
			}
		}
	}
}

// subKeyValue reads one key-value of partition i's disk or NIC (name)
// number j.
func (w *walker) subKeyValue(i int, name string, j int, e *unstable.Node) {
	w.keyValue(subTables[name], subPath(i, name, j, ""), w.subSeen, e)
}

// switchKeyValue reads one key-value of switch k.
func (w *walker) switchKeyValue(k int, e *unstable.Node) {
	w.keyValue(switchTable, switchPath(k, ""), w.switchSeen, e)
}

// inlineSubs reads "disk = [{...}, ...]" or "nic = [{...}, ...]" (name)
// in partition i, on line.
func (w *walker) inlineSubs(i int, name string, t *table, line int, v *unstable.Node) {
	it := v.Children()
	for it.Next() {
		n := it.Node()
		if n.Kind != unstable.InlineTable {
			w.errorf(line, fieldPath(i, name), "an array holding %s; each %s is a table", kindName(n.Kind), t.noun)
			continue
		}
		j := w.subs[name]
		w.subs[name]++
		w.c.lines[subPath(i, name, j, "")] = line
		w.subSeen = map[string]int{}
		kv := n.Children()
		for kv.Next() {
			if n := kv.Node(); n.Kind == unstable.KeyValue {
				w.subKeyValue(i, name, j, n)
			}
		}
	}
}

// topKeyValue reads a key-value before any table header: only
// "partition = [{...}, ...]" and "switch = [{...}, ...]", arrays of inline
// tables, belong there.
func (w *walker) topKeyValue(e *unstable.Node) {
	keys, line := w.keys(e.Key())
	name := keys[0]
	if len(keys) != 1 || name != "partition" && name != "switch" {
		w.errorf(line, strings.Join(keys, "."), "unknown key; %s", topRule)
		return
	}
	v := e.Value()
	if v.Kind != unstable.Array {
		w.errorf(line, name, "%s; write [[%s]] tables, one per %s", kindName(v.Kind), name, name)
		return
	}
	it := v.Children()
	for it.Next() {
		t := it.Node()
		if t.Kind != unstable.InlineTable {
			w.errorf(line, name, "an array holding %s; each %s is a table", kindName(t.Kind), name)
			continue
		}
		var base string
		var read func(*unstable.Node)
		if name == "partition" {
			i := w.newPartition(line)
			base, read = fieldPath(i, ""), func(n *unstable.Node) { w.partitionKeyValue(i, n) }
		} else {
			k := w.newSwitch(line)
			base, read = switchPath(k, ""), func(n *unstable.Node) { w.switchKeyValue(k, n) }
		}
		kv := t.Children()
		first := true
		for kv.Next() {
			if n := kv.Node(); n.Kind == unstable.KeyValue {
				if first {
					_, l := w.keys(n.Key())
					w.c.lines[base] = l
					first = false
				}
				read(n)
			}
		}
	}
}

// keys returns a key's parts and the line it starts on.
func (w *walker) keys(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = w.line(n.Raw)
		}
		parts = append(parts, string(n.Data))
	}
	if len(parts) == 0 {
		parts = []string{""}
	}
	return parts, line
}

// line is the line on which r starts, from 1, as the parser's Shape counts.
func (w *walker) line(r unstable.Range) int {
	n, _ := slices.BinarySearch(w.newlines, int(r.Offset))
	return n + 1
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
