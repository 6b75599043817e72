package engine

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// A kubernetes builder node is a deployment of buildkitd pods, labelled
// app=NODE by buildx. BuildKit's kube-pod:// helper needs a pod, so the
// running pods are listed with kubectl, which the helper itself needs.

// kubectlPods lists the running pods of a deployment; a variable so that
// tests can give the answer kubectl would.
var kubectlPods = func(namespace, app string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", "get", "pods", "--namespace", namespace,
		"--selector", "app="+app, "--field-selector", "status.phase=Running", "--output", "name").Output()
	if err != nil {
		return "", fmt.Errorf("kubectl get pods --namespace %s --selector app=%s: %w", namespace, app, err)
	}
	return string(out), nil
}

// kubeTargets are the running pods of a kubernetes node, one target each.
func kubeTargets(node, namespace string) ([]Target, error) {
	if namespace == "" {
		namespace = "default"
	}
	out, err := kubectlPods(namespace, node)
	if err != nil {
		return nil, err
	}
	var targets []Target
	for _, line := range strings.Fields(out) {
		pod := strings.TrimPrefix(line, "pod/")
		targets = append(targets, Target{Addr: "kube-pod://" + pod + "?namespace=" + url.QueryEscape(namespace)})
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no running pod of deployment %s in namespace %s: `docker buildx inspect --bootstrap` starts the builder", node, namespace)
	}
	return targets, nil
}
