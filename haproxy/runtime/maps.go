package runtime

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Maps are named by the path the configuration loads them from (as
// HAProxy expanded it) or by "#<id>" from Maps. Changes made here live in
// HAProxy's memory: a reload reads the map file again.

// Map is one map HAProxy has loaded ("show map").
type Map struct {
	// ID is HAProxy's unique id ("#ID" names the map in commands).
	ID string
	// File is the path the configuration loads it from.
	File string
	// Description is HAProxy's text (where it is used, entry count).
	Description string
}

// MapEntry is one entry of a map.
type MapEntry struct {
	// ID is HAProxy's reference of the entry ("0x..."), empty from files.
	ID    string
	Key   string
	Value string
}

// mapRefArg is a map identifier: a path, or # and a number.
var mapRefArg = regexp.MustCompile(`^(#[0-9]+|[^\s;#@\x00-\x1f\x7f][^\s;\x00-\x1f\x7f]*)$`)

func checkMap(what, m string) error {
	if !mapRefArg.MatchString(m) {
		return invalid("%s: %q is not a map path or #id", what, m)
	}
	return nil
}

// Maps lists the maps HAProxy has loaded.
func (c *Client) Maps(ctx context.Context) ([]Map, error) {
	out, err := c.listing(ctx, "show map")
	if err != nil {
		return nil, err
	}
	maps, err := ParseMaps(out)
	if err != nil {
		return nil, fmt.Errorf("runtime API %q: %w", "show map", err)
	}
	return maps, nil
}

// mapLine is a line of "show map": id, (file), description.
var mapLine = regexp.MustCompile(`^(-?[0-9]+) \(([^)]*)\) ?(.*)$`)

// ParseMaps reads the answer of "show map" without an argument.
func ParseMaps(out string) ([]Map, error) {
	maps := []Map{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := mapLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unexpected map line %q", line)
		}
		maps = append(maps, Map{ID: m[1], File: m[2], Description: m[3]})
	}
	return maps, nil
}

// MapEntries lists the entries of map m; an unknown map matches
// ErrNotFound.
func (c *Client) MapEntries(ctx context.Context, m string) ([]MapEntry, error) {
	if err := checkMap("show map", m); err != nil {
		return nil, err
	}
	cmd := "show map " + m
	out, err := c.listing(ctx, cmd)
	if err != nil {
		return nil, err
	}
	entries, err := ParseMapEntries(out)
	if err != nil {
		return nil, fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return entries, nil
}

// ParseMapEntries reads the answer of "show map <map>": one "<ref> <key>
// <value>" line per entry (the value may hold blanks).
func ParseMapEntries(out string) ([]MapEntry, error) {
	entries := []MapEntry{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ref, rest, ok := strings.Cut(line, " ")
		key, value, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 || !strings.HasPrefix(ref, "0x") || key == "" {
			return nil, fmt.Errorf("unexpected map entry line %q", line)
		}
		entries = append(entries, MapEntry{ID: ref, Key: key, Value: value})
	}
	return entries, nil
}

// MapEntry is the entry of map m whose key is exactly key; found is
// false when there is none. It asks HAProxy to look key up ("get map",
// one tree lookup), and reads every entry only when the lookup matched
// another key: "get map" matches the way the map's converter does, which
// is an exact key match for map() and map_int() but not for map_beg(),
// map_sub() and the like. (A regular expression key that does not match
// its own text is not found.) The lookup carries no entry reference: ID
// is empty unless the entries were read.
func (c *Client) MapEntry(ctx context.Context, m, key string) (e MapEntry, found bool, err error) {
	l, err := c.LookupMap(ctx, m, key)
	if err != nil {
		return MapEntry{}, false, err
	}
	if !l.Found {
		return MapEntry{}, false, nil
	}
	if l.Key == key {
		return MapEntry{Key: l.Key, Value: l.Value}, true, nil
	}
	entries, err := c.MapEntries(ctx, m)
	if err != nil {
		return MapEntry{}, false, err
	}
	for _, e := range entries {
		if e.Key == key {
			return e, true, nil
		}
	}
	return MapEntry{}, false, nil
}

// Lookup is the answer of "get map": whether a sample matched, and the
// entry it matched.
type Lookup struct {
	Found      bool
	Key, Value string
}

// LookupMap looks input up in map m as the map's converter would ("get
// map").
func (c *Client) LookupMap(ctx context.Context, m, input string) (Lookup, error) {
	if err := checkMap("get map", m); err != nil {
		return Lookup{}, err
	}
	if err := checkArgs("get map "+m, input); err != nil {
		return Lookup{}, err
	}
	cmd := "get map " + m + " " + input
	out, err := c.listing(ctx, cmd)
	if err != nil {
		return Lookup{}, err
	}
	l, err := ParseLookup(out)
	if err != nil {
		return Lookup{}, fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return l, nil
}

// lookupField is one name=value pair of "get map"'s answer; quoted values
// may hold commas and escaped quotes.
var lookupField = regexp.MustCompile(`([a-z_]+)=("(?:[^"\\]|\\.)*"|[^,]*)`)

// ParseLookup reads the answer of "get map", e.g. type=str,
// case=sensitive, found=yes, idx=tree, key="a.example", value="be_a",
// type="str".
func ParseLookup(out string) (Lookup, error) {
	out = strings.TrimSpace(out)
	var l Lookup
	sawFound := false
	for _, m := range lookupField.FindAllStringSubmatch(out, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return Lookup{}, fmt.Errorf("value %s of %s: %w", v, m[1], err)
			}
			v = uq
		}
		switch m[1] {
		case "found":
			sawFound = true
			l.Found = v == "yes"
		case "key":
			l.Key = v
		case "value":
			l.Value = v
		}
	}
	if !sawFound {
		return Lookup{}, fmt.Errorf("no found= in %q", firstLine(out))
	}
	if l.Found && l.Key == "" {
		return Lookup{}, fmt.Errorf("a match without its key: %q", firstLine(out))
	}
	return l, nil
}

// AddMapEntry adds key → value to map m. HAProxy keeps duplicates: a key
// already there is added again (and lookups find the first).
func (c *Client) AddMapEntry(ctx context.Context, m, key, value string) error {
	if err := checkMap("add map", m); err != nil {
		return err
	}
	if err := checkArgs("add map "+m, key, value); err != nil {
		return err
	}
	_, err := c.run(ctx, "add map "+m+" "+key+" "+value, "", empty)
	return err
}

// AddMapEntries adds entries to map m in one command (a payload).
func (c *Client) AddMapEntries(ctx context.Context, m string, entries []MapEntry) error {
	if err := checkMap("add map", m); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	var b strings.Builder
	for _, e := range entries {
		if err := checkArgs("add map "+m, e.Key, e.Value); err != nil {
			return err
		}
		b.WriteString(e.Key + " " + e.Value + "\n")
	}
	_, err := c.run(ctx, "add map "+m, b.String(), empty)
	return err
}

// SetMapEntry changes the value of every entry of map m with key; a key
// the map lacks matches ErrNotFound.
func (c *Client) SetMapEntry(ctx context.Context, m, key, value string) error {
	if err := checkMap("set map", m); err != nil {
		return err
	}
	if err := checkArgs("set map "+m, key, value); err != nil {
		return err
	}
	_, err := c.run(ctx, "set map "+m+" "+key+" "+value, "", empty)
	return err
}

// DeleteMapEntry removes every entry of map m with key; a key the map
// lacks matches ErrNotFound.
func (c *Client) DeleteMapEntry(ctx context.Context, m, key string) error {
	if err := checkMap("del map", m); err != nil {
		return err
	}
	if err := checkArgs("del map "+m, key); err != nil {
		return err
	}
	_, err := c.run(ctx, "del map "+m+" "+key, "", empty)
	return err
}

// ClearMap removes every entry of map m.
func (c *Client) ClearMap(ctx context.Context, m string) error {
	if err := checkMap("clear map", m); err != nil {
		return err
	}
	_, err := c.run(ctx, "clear map "+m, "", empty)
	return err
}
