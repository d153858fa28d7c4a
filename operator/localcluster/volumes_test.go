package localcluster

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSecretVolumeUpdatesAllFilesAtOnce: like a kubelet's, a projected
// Secret is replaced by swapping one link, the keys named in items appear
// under their paths, and the previous projection goes.
func TestSecretVolumeUpdatesAllFilesAtOnce(t *testing.T) {
	v := &secretVolume{secret: "api", dir: filepath.Join(t.TempDir(), "vol"), mode: 0o440,
		items: []corev1.KeyToPath{{Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}}}
	secret := func(rv, crt, key string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api", ResourceVersion: rv},
			Data: map[string][]byte{"tls.crt": []byte(crt), "tls.key": []byte(key), "ca.crt": []byte("ca")}}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(v.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := v.write(secret("1", "crt1", "key1")); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if read("tls.crt") != "crt1" || read("tls.key") != "key1" {
		t.Fatal("first projection")
	}
	if _, err := os.Stat(filepath.Join(v.dir, "ca.crt")); !os.IsNotExist(err) {
		t.Error("a key not named in items was projected")
	}
	if err := v.write(secret("2", "crt2", "key2")); err != nil {
		t.Fatal(err)
	}
	if read("tls.crt") != "crt2" || read("tls.key") != "key2" || v.version != "2" {
		t.Fatal("second projection")
	}
	if _, err := os.Stat(filepath.Join(v.dir, first)); !os.IsNotExist(err) {
		t.Error("the previous projection is still there")
	}
	if err := v.write(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Data: map[string][]byte{}}); err == nil {
		t.Error("a Secret without the items' keys was projected")
	}
}

func TestExpandLikeAKubelet(t *testing.T) {
	env := map[string]string{"POD_IP": "127.0.0.9"}
	for in, want := range map[string]string{
		"--listen=$(POD_IP):5555": "--listen=127.0.0.9:5555",
		"--listen=:5555":          "--listen=:5555",
		"$(UNKNOWN)":              "$(UNKNOWN)",
	} {
		if got := expand(in, env); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
