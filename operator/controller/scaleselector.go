package controller

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
)

// ScaleSelector is the label query of hap's instance Pods that its status
// carries for the scale subresource: a HorizontalPodAutoscaler reads it to
// find the Pods whose metrics it averages. It is the selector of the
// instances' Deployment, so it matches exactly the Pods the Deployment
// owns. External instances are no Pods: their selector is empty.
func ScaleSelector(hap *v1alpha1.HAProxy) string {
	if external(hap) {
		return ""
	}
	return labels.SelectorFromSet(selectorLabels(hap)).String()
}
