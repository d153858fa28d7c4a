package localcluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// gatewayAPIModule is the module whose ReferenceGrant types the operator
// reads; its CRD ships in the module's config/crd.
const gatewayAPIModule = "sigs.k8s.io/gateway-api"

// referenceGrantCRDFile is the standard-channel ReferenceGrant CRD inside
// the module.
const referenceGrantCRDFile = "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml"

// ReferenceGrantCRD returns the path of Gateway API's ReferenceGrant CRD
// in the Go module cache, for the version of sigs.k8s.io/gateway-api this
// program was built with. The CRD is Gateway API's to publish: it is read
// from the module at run time, never copied into this repository. It needs
// the go command (a development tool, like the local cluster itself).
func ReferenceGrantCRD() (string, error) {
	dir, err := gatewayAPIDir()
	if err != nil {
		return "", fmt.Errorf("find the ReferenceGrant CRD in module %s: %w", gatewayAPIModule, err)
	}
	path := filepath.Join(dir, filepath.FromSlash(referenceGrantCRDFile))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("find the ReferenceGrant CRD in module %s: %w", gatewayAPIModule, err)
	}
	return path, nil
}

// gatewayAPIDir is the module's directory: the version this binary was
// built with, downloaded into the module cache if it is not there (so it
// works from any directory), or else the one the main module in the
// current directory requires.
func gatewayAPIDir() (string, error) {
	if version := builtWith(gatewayAPIModule); version != "" {
		out, err := goCommand("mod", "download", "-json", gatewayAPIModule+"@"+version)
		if err != nil {
			return "", err
		}
		var mod struct{ Dir, Error string }
		if err := json.Unmarshal(out, &mod); err != nil {
			return "", fmt.Errorf("read go mod download's answer: %w", err)
		}
		if mod.Error != "" || mod.Dir == "" {
			return "", fmt.Errorf("go mod download %s@%s: %s", gatewayAPIModule, version, mod.Error)
		}
		return mod.Dir, nil
	}
	out, err := goCommand("list", "-m", "-f", "{{.Dir}}", gatewayAPIModule)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// builtWith is the version of module path in this binary's build
// information, following a replace directive; "" when unknown.
func builtWith(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, dep := range info.Deps {
		if dep.Path != path {
			continue
		}
		if dep.Replace != nil {
			if dep.Replace.Version == "" {
				return "" // a local directory: go list finds it
			}
			return dep.Replace.Version
		}
		return dep.Version
	}
	return ""
}

func goCommand(args ...string) ([]byte, error) {
	goBin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			goBin = p
		}
	}
	cmd := exec.Command(goBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
