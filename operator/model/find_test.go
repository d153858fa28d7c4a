package model

import "testing"

func TestFind(t *testing.T) {
	backends := []*Backend{{Name: "a"}, {Name: "c"}, {Name: "e"}}
	for _, tc := range []struct {
		name string
		at   int
		ok   bool
	}{
		{"a", 0, true}, {"c", 1, true}, {"e", 2, true},
		{"", 0, false}, {"b", 1, false}, {"f", 3, false},
	} {
		if at, ok := Find(backends, tc.name, BackendNameOf); at != tc.at || ok != tc.ok {
			t.Errorf("Find(%q) = %d, %v; want %d, %v", tc.name, at, ok, tc.at, tc.ok)
		}
	}
	if _, ok := Find([]*Frontend(nil), "a", FrontendNameOf); ok {
		t.Error("found a name in no sections")
	}
}
