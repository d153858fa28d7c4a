package runtime

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
)

// Info is "show info": the process's name: value pairs (Version, Pid,
// Uptime_sec, CurrConns, ...).
func (c *Client) Info(ctx context.Context) (map[string]string, error) {
	out, err := c.listing(ctx, "show info")
	if err != nil {
		return nil, err
	}
	info, err := ParseInfo(out)
	if err != nil {
		return nil, fmt.Errorf("runtime API %q: %w", "show info", err)
	}
	return info, nil
}

// ParseInfo reads "Name: value" lines.
func ParseInfo(out string) (map[string]string, error) {
	info := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("unexpected info line %q", line)
		}
		info[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if info["Version"] == "" {
		return nil, fmt.Errorf("no Version in %q", firstLine(out))
	}
	return info, nil
}

// Stat is "show stat": one row per frontend, backend and server, keyed by
// the CSV header's column names (pxname, svname, scur, status, weight...).
func (c *Client) Stat(ctx context.Context) ([]map[string]string, error) {
	out, err := c.listing(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	rows, err := ParseStat(out)
	if err != nil {
		return nil, fmt.Errorf("runtime API %q: %w", "show stat", err)
	}
	return rows, nil
}

// ParseStat reads "show stat"'s CSV, whose header line starts with "# ".
func ParseStat(out string) ([]map[string]string, error) {
	out = strings.TrimSpace(out)
	if !strings.HasPrefix(out, "# ") {
		return nil, fmt.Errorf("no CSV header: %q", firstLine(out))
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	header := records[0]
	rows := make([]map[string]string, 0, len(records)-1)
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, v := range rec {
			if i < len(header) && header[i] != "" {
				row[header[i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}
