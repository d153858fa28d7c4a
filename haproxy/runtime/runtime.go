// Package runtime is a client for HAProxy's runtime API: the stats socket
// of one HAProxy process ("stats socket ... level admin"). The dataplane
// uses it to change servers, weights, maps and certificates without a
// reload. It imports nothing beyond the standard library, so what links
// it links no test code.
//
// Each command gets its own connection (HAProxy's non-interactive mode:
// one command, its answer, then HAProxy closes), bounded by the caller's
// context and the client's timeout; at most MaxConns commands run at once,
// below HAProxy's default "stats maxconn" of 10. A new connection per
// command also means a reload (a new worker binds the socket again) needs
// no reconnection logic.
//
// HAProxy answers every command with text, errors included ("No such
// backend.", "Unknown map identifier..."), and some failures come as
// warnings or not at all (set maxconn with a non-number sets 0). So every
// helper validates its arguments first, and accepts only the answer its
// command gives on success; anything else is a *CommandError naming the
// command and carrying HAProxy's message. Errors HAProxy reports for a
// missing or duplicate object match ErrNotFound or ErrExists (errors.Is).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"
)

// Defaults of a new Client.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 8
)

// Client sends commands to one HAProxy stats socket.
type Client struct {
	socket string
	// Timeout bounds each command (dial, write, read), on top of the
	// caller's context.
	Timeout time.Duration
	sem     chan struct{}
}

// New returns a client for the UNIX stats socket at path.
func New(path string) *Client {
	return &Client{socket: path, Timeout: DefaultTimeout, sem: make(chan struct{}, DefaultMaxConns)}
}

// Socket is the stats socket's path.
func (c *Client) Socket() string { return c.socket }

// Sentinel errors a *CommandError matches when HAProxy's answer says so.
var (
	// ErrNotFound: the backend, frontend, server, map or map entry does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an object of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid: an argument was refused before anything was sent.
	ErrInvalid = errors.New("invalid argument")
)

// invalid is an argument error: it matches ErrInvalid.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// CommandError is a command HAProxy refused or answered unexpectedly.
type CommandError struct {
	// Command is the command line sent (without a payload).
	Command string
	// Message is HAProxy's answer without severity prefixes.
	Message string
	kind    error
}

func (e *CommandError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "empty answer"
	}
	return fmt.Sprintf("runtime API %q: %s", e.Command, msg)
}

// Unwrap lets errors.Is match ErrNotFound and ErrExists.
func (e *CommandError) Unwrap() error { return e.kind }

// notFound and exists are HAProxy 2.6's answers for a missing or a
// duplicate object.
var (
	notFound = []string{
		"No such backend.", "No such server.", "No such frontend.", "Can't find backend.",
		"Unknown map identifier.", "entry not found.", "Key not found.",
		"Can't replace a certificate which is not referenced by the configuration!",
	}
	exists = []string{"Already exists a server with the same name in backend."}
)

// commandError builds the error for cmd's answer msg.
func commandError(cmd, msg string) *CommandError {
	e := &CommandError{Command: cmd, Message: msg}
	for _, s := range notFound {
		if strings.Contains(msg, s) {
			e.kind = ErrNotFound
		}
	}
	for _, s := range exists {
		if strings.Contains(msg, s) {
			e.kind = ErrExists
		}
	}
	if strings.Contains(msg, "still has connections") {
		e.kind = ErrStillConnected
	}
	return e
}

// severity matches the "[N]: " prefix "set severity-output number" puts
// before each message.
var severity = regexp.MustCompile(`(?m)^\[[0-7]\]: `)

// errorSeverity matches the prefix of an emergency, alert, critical or
// error message.
var errorSeverity = regexp.MustCompile(`(?m)^\[[0-3]\]: `)

// clean strips the severity prefixes and surrounding blank lines.
func clean(out string) string {
	return strings.TrimSpace(severity.ReplaceAllString(out, ""))
}

// execute sends one command line (with its payload, when given, as
// HAProxy's "<<" heredoc) and returns the raw answer. Severity numbers
// are turned on for the command, so messages carry "[N]: ".
func (c *Client) execute(ctx context.Context, cmd, payload string) (string, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("runtime API %q: %w", cmd, ctx.Err())
	}
	defer func() { <-c.sem }()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return "", fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	// The context may end before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line := "set severity-output number;" + cmd
	if payload != "" {
		line += " <<\n" + strings.TrimRight(payload, "\n") + "\n\n"
	} else {
		line += "\n"
	}
	if _, err := io.WriteString(conn, line); err != nil {
		return "", fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return string(b), fmt.Errorf("runtime API %q: %w", cmd, err)
	}
	return string(b), nil
}

// Execute runs one command and returns HAProxy's answer, with severity
// prefixes and surrounding blank lines removed. An answer HAProxy marks
// as an error (severity 0 to 3) is a *CommandError. It is for commands
// without a typed helper; it refuses a line holding ';' or a newline.
func (c *Client) Execute(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, ";\n\r") || strings.TrimSpace(cmd) == "" {
		return "", invalid("runtime API %q: one command expected, without ';' or newlines", cmd)
	}
	out, err := c.execute(ctx, cmd, "")
	if err != nil {
		return "", err
	}
	if errorSeverity.MatchString(out) {
		return "", commandError(cmd, clean(out))
	}
	return clean(out), nil
}

// run executes cmd (and payload) and checks the answer with ok, which
// gets the cleaned answer.
func (c *Client) run(ctx context.Context, cmd, payload string, ok func(string) bool) (string, error) {
	out, err := c.execute(ctx, cmd, payload)
	if err != nil {
		return "", err
	}
	msg := clean(out)
	if !ok(msg) {
		return "", commandError(cmd, msg)
	}
	return msg, nil
}

// empty accepts the silent answer most setters give on success.
func empty(msg string) bool { return msg == "" }

// exactly accepts one answer.
func exactly(want string) func(string) bool {
	return func(msg string) bool { return msg == want }
}

// listing accepts an answer that starts as a listing does (a header line
// or data), not as a message; errors are recognised by their severity
// prefix, which listings never carry.
func (c *Client) listing(ctx context.Context, cmd string) (string, error) {
	out, err := c.execute(ctx, cmd, "")
	if err != nil {
		return "", err
	}
	if severity.MatchString(out) {
		return "", commandError(cmd, clean(out))
	}
	return strings.Trim(out, "\n"), nil
}

// word matches what may stand as one argument: no blank, no ';', no
// control character, not starting with '#' or '@' (HAProxy reads those
// as references and versions) unless allowed.
var word = regexp.MustCompile(`^[^\s;#@\x00-\x1f\x7f][^\s;\x00-\x1f\x7f]*$`)

// checkArgs validates arguments that go into a command line.
func checkArgs(what string, args ...string) error {
	for _, a := range args {
		if !word.MatchString(a) {
			return invalid("%s: %q is not one word HAProxy's runtime API can take (empty, blank, ';', control character, or a leading # or @)", what, a)
		}
	}
	return nil
}
