package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// secretVolume is a Secret projected into a Pod's directory the way a
// kubelet does it: the files live in a timestamped directory, "..data"
// points at the current one and each key is a link through "..data", so
// an update replaces every file at once.
type secretVolume struct {
	secret    string
	mountPath string
	dir       string
	items     []corev1.KeyToPath
	mode      os.FileMode
	// version is the Secret's resourceVersion last written, checked is
	// when the Secret was last read.
	version string
	checked time.Time
}

// secretVolumes projects the Secret volumes container c mounts; a missing
// Secret keeps the Pod from starting, as with a kubelet.
func (k *Kubelet) secretVolumes(ctx context.Context, pod *corev1.Pod, c corev1.Container, dir string) ([]*secretVolume, error) {
	byName := map[string]*corev1.SecretVolumeSource{}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			byName[v.Name] = v.Secret
		}
	}
	var out []*secretVolume
	for _, m := range c.VolumeMounts {
		src := byName[m.Name]
		if src == nil {
			continue
		}
		v := &secretVolume{
			secret: src.SecretName, mountPath: filepath.Clean(m.MountPath),
			dir: filepath.Join(dir, "volumes", m.Name), items: src.Items, mode: 0o644,
		}
		if src.DefaultMode != nil {
			v.mode = os.FileMode(*src.DefaultMode)
		}
		var s corev1.Secret
		if err := k.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: v.secret}, &s); err != nil {
			return nil, fmt.Errorf("volume %s: Secret %s/%s: %w", m.Name, pod.Namespace, v.secret, err)
		}
		if err := v.write(&s); err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// refreshVolumes writes a Pod's Secret volumes again when their Secret
// changed, at most once a second per volume, as a kubelet's periodic sync
// does; a deleted Secret leaves the files as they were.
func (k *Kubelet) refreshVolumes(ctx context.Context, namespace string, p *process) {
	for _, v := range p.volumes {
		if time.Since(v.checked) < time.Second {
			continue
		}
		v.checked = time.Now()
		var s corev1.Secret
		if err := k.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v.secret}, &s); err != nil {
			continue
		}
		if s.ResourceVersion == v.version {
			continue
		}
		if err := v.write(&s); err != nil {
			k.Log.Error(err, "Refresh a Secret volume", "secret", v.secret, "dir", v.dir)
		}
	}
}

// write projects s into a new timestamped directory and swaps "..data" to
// it in one rename.
func (v *secretVolume) write(s *corev1.Secret) error {
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	if len(v.items) == 0 {
		for key, data := range s.Data {
			files[key] = data
		}
	} else {
		for _, it := range v.items {
			data, ok := s.Data[it.Key]
			if !ok {
				return fmt.Errorf("Secret %s has no key %s", s.Name, it.Key)
			}
			files[it.Path] = data
		}
	}
	stamp := ".." + strconv.FormatInt(time.Now().UnixNano(), 10)
	tsDir := filepath.Join(v.dir, stamp)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tsDir, name), data, v.mode); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmpLink := filepath.Join(v.dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(stamp, tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	if old != "" && old != stamp {
		_ = os.RemoveAll(filepath.Join(v.dir, old))
	}
	v.version = s.ResourceVersion
	return nil
}
