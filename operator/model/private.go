package model

// PrivateBytes holds secret material (private keys, passwords). It prints,
// marshals and logs as [redacted], so goldens, logs, events and status
// cannot leak it; Reveal is the one way to the bytes.
type PrivateBytes []byte

const redacted = "[redacted]"

// Reveal returns the secret bytes. Only the renderer and the applier call it.
func (p PrivateBytes) Reveal() []byte { return p }

// String implements fmt.Stringer.
func (p PrivateBytes) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v redacts too.
func (p PrivateBytes) GoString() string { return redacted }

// MarshalText implements encoding.TextMarshaler (JSON, YAML, slog).
func (p PrivateBytes) MarshalText() ([]byte, error) { return []byte(redacted), nil }
