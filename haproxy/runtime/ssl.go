package runtime

import (
	"context"
	"errors"
	"strings"
)

// SetCert opens (or updates) a transaction replacing the certificate
// file path, which the configuration loads, with pem (certificate and
// key). Blank lines are dropped from pem: one would end the payload.
// CommitCert makes it serve.
func (c *Client) SetCert(ctx context.Context, path, pem string) error {
	if err := checkArgs("set ssl cert", path); err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(pem, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, "\r"))
		}
	}
	if len(lines) == 0 {
		return invalid("set ssl cert %s: empty PEM", path)
	}
	_, err := c.run(ctx, "set ssl cert "+path, strings.Join(lines, "\n"), func(msg string) bool {
		return strings.HasPrefix(msg, "Transaction created for certificate "+path+"!") ||
			strings.HasPrefix(msg, "Transaction updated for certificate "+path+"!")
	})
	return err
}

// CommitCert commits the open transaction of path: new handshakes use the
// new certificate.
func (c *Client) CommitCert(ctx context.Context, path string) error {
	if err := checkArgs("commit ssl cert", path); err != nil {
		return err
	}
	_, err := c.run(ctx, "commit ssl cert "+path, "", func(msg string) bool {
		return strings.HasPrefix(msg, "Committing "+path) && strings.HasSuffix(msg, "Success!")
	})
	return err
}

// AbortCert drops the open transaction of path.
func (c *Client) AbortCert(ctx context.Context, path string) error {
	if err := checkArgs("abort ssl cert", path); err != nil {
		return err
	}
	_, err := c.run(ctx, "abort ssl cert "+path, "", func(msg string) bool {
		return strings.HasPrefix(msg, "Transaction aborted for certificate")
	})
	return err
}

// UpdateCert replaces a loaded certificate at runtime: SetCert, then
// CommitCert; a failed commit is aborted so no transaction stays open.
func (c *Client) UpdateCert(ctx context.Context, path, pem string) error {
	if err := c.SetCert(ctx, path, pem); err != nil {
		return err
	}
	if err := c.CommitCert(ctx, path); err != nil {
		if aerr := c.AbortCert(ctx, path); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	return nil
}
