package dataplane

import (
	"strings"
)

// cfgSection is one section of a configuration: its keyword line and the
// lines under it, or the lines before the first section (header "").
type cfgSection struct {
	header string
	lines  []string
}

// splitSections cuts a configuration into sections at every line that
// starts with neither a blank, a tab nor '#'.
func splitSections(text string) []cfgSection {
	out := []cfgSection{{}}
	for _, line := range strings.Split(text, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			out = append(out, cfgSection{header: line})
			continue
		}
		cur := &out[len(out)-1]
		cur.lines = append(cur.lines, line)
	}
	return out
}

func isServerLine(line string) bool {
	return strings.HasPrefix(strings.TrimLeft(line, " \t"), "server ")
}

// isDescriptionLine: a description is free text for the stats page,
// which no other line refers to and HAProxy cannot refuse.
func isDescriptionLine(line string) bool {
	return strings.HasPrefix(strings.TrimLeft(line, " \t"), "description ")
}

// incrementalCheck returns what haproxy -c needs to read to vouch for
// next, when next differs from good (a configuration HAProxy runs, so
// valid) only in the server lines of some backends and in descriptions:
// the global, defaults and resolvers sections of next and those backends,
// with their server lines and without their tcp-request rules (unchanged,
// and they may name backends left out). A frontend whose description
// alone changed is not checked. A push that only moves endpoints, or
// fills a pooled backend for a new SNI host, is then checked in
// milliseconds whatever the size of the configuration. It returns false
// when anything else changed: the whole text must be checked.
func incrementalCheck(good, next string) (string, bool) {
	return incrementalCheckFrom(splitSections(good), next)
}

// incrementalCheckFrom is incrementalCheck from the sections of good,
// which the server splits once per configuration HAProxy runs, not once
// per push.
func incrementalCheckFrom(before []cfgSection, next string) (string, bool) {
	after := splitSections(next)
	if len(before) != len(after) {
		return "", false
	}
	var b strings.Builder
	for i := range after {
		old, cur := before[i], after[i]
		if old.header != cur.header {
			return "", false
		}
		keyword, _, _ := strings.Cut(cur.header, " ")
		switch keyword {
		case "":
			// Comments only (the _version line differs).
			continue
		case "global", "defaults", "resolvers":
			if !equalLines(old.lines, cur.lines) {
				return "", false
			}
			writeSection(&b, cur.header, cur.lines)
			continue
		}
		if equalLines(old.lines, cur.lines) {
			continue
		}
		switch {
		case keyword == "frontend" && equalLines(without(old.lines, isDescriptionLine), without(cur.lines, isDescriptionLine)):
			continue
		case keyword != "backend" && keyword != "listen" || !equalLines(without(old.lines, isRuntimeLine), without(cur.lines, isRuntimeLine)):
			return "", false
		}
		var kept []string
		for _, line := range cur.lines {
			if !strings.HasPrefix(strings.TrimLeft(line, " \t"), "tcp-request ") {
				kept = append(kept, line)
			}
		}
		writeSection(&b, cur.header, kept)
	}
	return b.String(), true
}

// isRuntimeLine: a line of a backend (or listen section) a runtime-only
// push may change.
func isRuntimeLine(line string) bool { return isServerLine(line) || isDescriptionLine(line) }

func without(lines []string, drop func(string) bool) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if !drop(l) {
			out = append(out, l)
		}
	}
	return out
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeSection(b *strings.Builder, header string, lines []string) {
	b.WriteString(header)
	b.WriteByte('\n')
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}
