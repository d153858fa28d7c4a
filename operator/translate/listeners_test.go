package translate

import "testing"

func TestNormAddress(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"unset is all addresses":                {"", ""},
		"0.0.0.0 is all addresses":              {"0.0.0.0", ""},
		":: is all addresses":                   {"::", ""},
		"::ffff:0.0.0.0 is all addresses":       {"::ffff:0.0.0.0", ""},
		"IPv4 stays":                            {"10.0.0.1", "10.0.0.1"},
		"IPv4-mapped IPv6 is the IPv4 address":  {"::ffff:10.0.0.1", "10.0.0.1"},
		"zero-padded IPv6 is canonical":         {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
		"uppercase IPv6 is canonical":           {"2001:DB8::A", "2001:db8::a"},
		"an invalid address is kept for errors": {"not-an-ip", "not-an-ip"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := normAddress(tc.in); got != tc.want {
				t.Errorf("normAddress(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	tests := map[string]struct {
		in          string
		first, last int32
		wantErr     bool
	}{
		"one port":               {in: "443", first: 443, last: 443},
		"a range":                {in: "3000-3999", first: 3000, last: 3999},
		"a range of one":         {in: "5-5", first: 5, last: 5},
		"a reversed range":       {in: "3999-3000", wantErr: true},
		"port 0":                 {in: "0", wantErr: true},
		"over 65535":             {in: "1-65536", wantErr: true},
		"not a number":           {in: "http", wantErr: true},
		"empty":                  {in: "", wantErr: true},
		"an open range":          {in: "3000-", wantErr: true},
		"a list is not accepted": {in: "80,443", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			first, last, err := parsePorts(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parsePorts(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && (first != tc.first || last != tc.last) {
				t.Errorf("parsePorts(%q) = %d-%d, want %d-%d", tc.in, first, last, tc.first, tc.last)
			}
		})
	}
}
