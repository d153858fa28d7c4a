package model

import "sort"

// Find is the position of the section called name in sections, which are
// in name order, as translate leaves a Config's frontends, backends and
// maps; ok is false when no section has that name. It reads the sections
// in place: a comparison copies none.
func Find[T any](sections []T, name string, nameOf func(*T) string) (i int, ok bool) {
	i = sort.Search(len(sections), func(i int) bool { return nameOf(&sections[i]) >= name })
	return i, i < len(sections) && nameOf(&sections[i]) == name
}

// FrontendNameOf, BackendNameOf and MapNameOf name a section for Find.
func FrontendNameOf(f **Frontend) string { return (*f).Name }

func BackendNameOf(b **Backend) string { return (*b).Name }

func MapNameOf(m *Map) string { return m.Name }
