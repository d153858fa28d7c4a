package controller

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites are the versions the operator's own writes left on the
// Services it owns. The watch event of such a write is its echo: the
// reconcile that wrote it already made it right, so the echo neither
// reconciles again nor counts as a change that keeps a reload held. At
// 10,000 mappings the owned Service has 5,000 ports, and every new port
// rewrote it and then reconciled once more for nothing.
type ownWrites struct {
	versions sync.Map // client.ObjectKey -> resourceVersion written
}

// wrote records that the operator's write left obj at its version.
func (w *ownWrites) wrote(obj client.Object) {
	w.versions.Store(client.ObjectKeyFromObject(obj), obj.GetResourceVersion())
}

// echo says whether obj, as a watch event shows it, is just what the
// operator's last write of it left.
func (w *ownWrites) echo(obj client.Object) bool {
	v, ok := w.versions.Load(client.ObjectKeyFromObject(obj))
	return ok && obj.GetResourceVersion() != "" && v.(string) == obj.GetResourceVersion()
}

// notEchoes lets through every event but the echoes of the operator's
// own writes; deletions always pass.
func (w *ownWrites) notEchoes() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.echo(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.echo(e.ObjectNew) },
	}
}
