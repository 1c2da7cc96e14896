// Command argocd-check answers questions about argocd/ with ArgoCD's own code (github.com/argoproj/argo-cd/v2):
// the settings are parsed from an argocd-cm ConfigMap by ArgoCD's SettingsManager, health runs through
// gitops-engine's GetResourceHealth and ArgoCD's Lua VM (gopher-lua, ArgoCD's sandbox), refreshes are decided by
// the application controller's cache code, and diffs by ArgoCD's diff with the Application's ignoreDifferences.
//
// Usage: argocd-check ARGOCD_CM_YAML < requests.jsonl > answers.jsonl
//
// One JSON request per line, one JSON answer per line, in order:
//
//	{"op": "health", "object": {...}}                          -> {"status": "...", "message": "..."}
//	{"op": "refresh", "old": {...}, "new": {...}}              -> {"refresh": bool, "appName": "..."}
//	{"op": "diff", "application": {...}, "desired": {...}, "live": {...}}  -> {"modified": bool}
//	{"op": "watched", "group": "...", "kind": "..."}           -> {"watched": bool}
//	{"op": "settings"}                                          -> {"ignoreResourceUpdatesEnabled": bool}
//
// A request ArgoCD rejects gets {"error": "..."}; the command exits non-zero only on unreadable input.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/argoproj/gitops-engine/pkg/health"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v2/controller/cache"
	appv1 "github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v2/util/argo"
	argodiff "github.com/argoproj/argo-cd/v2/util/argo/diff"
	"github.com/argoproj/argo-cd/v2/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/argo-cd/v2/util/settings"
)

const argocdNamespace = "argocd"

type request struct {
	Op          string                 `json:"op"`
	Object      map[string]interface{} `json:"object"`
	Old         map[string]interface{} `json:"old"`
	New         map[string]interface{} `json:"new"`
	Application *appv1.Application     `json:"application"`
	Desired     map[string]interface{} `json:"desired"`
	Live        map[string]interface{} `json:"live"`
	Group       string                 `json:"group"`
	Kind        string                 `json:"kind"`
}

// checker holds what the application controller loads from argocd-cm (controller/cache loadCacheSettings).
type checker struct {
	overrides         map[string]appv1.ResourceOverride
	updateOverrides   map[string]appv1.ResourceOverride
	updatesEnabled    bool
	filter            *settings.ResourcesFilter
	labelKey          string
	trackingMethod    appv1.TrackingMethod
	installationID    string
	ignoreAggregRoles bool
}

func load(path string) (*checker, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The file is merged into the installed argocd-cm, which carries ArgoCD's part-of label (the settings
	// manager watches only ConfigMaps with it).
	installed := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "argocd-cm",
			Namespace: argocdNamespace,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
		},
		Data: cm.Data,
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name:      "argocd-secret",
		Namespace: argocdNamespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	mgr := settings.NewSettingsManager(context.Background(), fake.NewSimpleClientset(installed, secret), argocdNamespace)
	c := &checker{}
	if c.overrides, err = mgr.GetResourceOverrides(); err != nil {
		return nil, fmt.Errorf("resource overrides: %w", err)
	}
	if c.updateOverrides, err = mgr.GetIgnoreResourceUpdatesOverrides(); err != nil {
		return nil, fmt.Errorf("ignoreResourceUpdates: %w", err)
	}
	if c.updatesEnabled, err = mgr.GetIsIgnoreResourceUpdatesEnabled(); err != nil {
		return nil, fmt.Errorf("resource.ignoreResourceUpdatesEnabled: %w", err)
	}
	if c.filter, err = mgr.GetResourcesFilter(); err != nil {
		return nil, fmt.Errorf("resource filter: %w", err)
	}
	if c.labelKey, err = mgr.GetAppInstanceLabelKey(); err != nil {
		return nil, err
	}
	c.trackingMethod = argo.GetTrackingMethod(mgr)
	if c.installationID, err = mgr.GetInstallationID(); err != nil {
		return nil, err
	}
	options, err := mgr.GetResourceCompareOptions()
	if err != nil {
		return nil, err
	}
	c.ignoreAggregRoles = options.IgnoreAggregatedRoles
	return c, nil
}

// health is what the cluster cache keeps (res.Health, _ = health.GetResourceHealth(...)): a script that fails
// gives Unknown with the error as its message, as the application controller shows it.
func (c *checker) health(obj map[string]interface{}) (interface{}, error) {
	status, err := health.GetResourceHealth(&unstructured.Unstructured{Object: obj}, lua.ResourceHealthOverrides(c.overrides))
	if status == nil && err != nil {
		return nil, err
	}
	if status == nil { // no health check applies to the kind
		return map[string]string{}, nil
	}
	return status, nil
}

// refresh follows the cluster cache's handlers: resource info on each version, then OnResourceUpdated's skip.
func (c *checker) refresh(oldObj, newObj map[string]interface{}) (interface{}, error) {
	healthOverride := lua.ResourceHealthOverrides(c.overrides)
	tracking := argo.NewResourceTracking()
	infos := make([]*cache.ResourceInfo, 2)
	appName := ""
	for i, obj := range []map[string]interface{}{oldObj, newObj} {
		un := &unstructured.Unstructured{Object: obj}
		appName = tracking.GetAppName(un, c.labelKey, c.trackingMethod, c.installationID)
		info, err := cache.RigResourceInfo(un, appName, c.updateOverrides, healthOverride)
		if err != nil {
			return nil, err
		}
		infos[i] = info
	}
	skip := c.updatesEnabled && cache.RigSkipsUpdate(infos[0], infos[1])
	return map[string]interface{}{"refresh": !skip, "appName": appName}, nil
}

// diff is the comparison CompareAppState makes for one resource (without a diff cache or server-side diff).
func (c *checker) diff(app *appv1.Application, desired, live map[string]interface{}) (interface{}, error) {
	config, err := argodiff.NewDiffConfigBuilder().
		WithDiffSettings(app.Spec.IgnoreDifferences, c.overrides, c.ignoreAggregRoles, normalizers.IgnoreNormalizerOpts{}).
		WithTracking(c.labelKey, string(c.trackingMethod)).
		WithNoCache().
		Build()
	if err != nil {
		return nil, err
	}
	result, err := argodiff.StateDiff(&unstructured.Unstructured{Object: live}, &unstructured.Unstructured{Object: desired}, config)
	if err != nil {
		return nil, err
	}
	return map[string]interface{}{"modified": result.Modified}, nil
}

func (c *checker) answer(req request) (interface{}, error) {
	switch req.Op {
	case "health":
		return c.health(req.Object)
	case "refresh":
		return c.refresh(req.Old, req.New)
	case "diff":
		if req.Application == nil {
			return nil, fmt.Errorf("diff needs an application")
		}
		return c.diff(req.Application, req.Desired, req.Live)
	case "watched":
		return map[string]bool{"watched": !c.filter.IsExcludedResource(req.Group, req.Kind, "")}, nil
	case "settings":
		return map[string]bool{"ignoreResourceUpdatesEnabled": c.updatesEnabled}, nil
	}
	return nil, fmt.Errorf("unknown op %q (health, refresh, diff, watched, settings)", req.Op)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-check ARGOCD_CM_YAML < requests.jsonl")
		os.Exit(2)
	}
	c, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-check:", err)
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for line := 1; in.Scan(); line++ {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintf(os.Stderr, "argocd-check: request %d is not JSON: %v\n", line, err)
			os.Exit(1)
		}
		answer, err := c.answer(req)
		if err != nil {
			answer = map[string]string{"error": err.Error()}
		}
		if err := out.Encode(answer); err != nil {
			fmt.Fprintln(os.Stderr, "argocd-check:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-check:", err)
		os.Exit(1)
	}
}
