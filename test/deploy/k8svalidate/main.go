// Command k8svalidate decodes Kubernetes manifests strictly into the typed
// k8s.io/api structs named by each document's apiVersion and kind, so that a
// misspelt or misplaced field, a wrong type or a duplicate key fails:
//
//	cd test/deploy/k8svalidate && go run . [-dump] ../../../deploy/kubernetes/*.yaml
//
// It exits 0 when every document of every file decodes, 1 otherwise (each
// problem on stderr, naming file, document and field). With -dump it also
// prints every document as JSON ([{"file":…,"doc":…}, …]) on stdout, for
// the semantic checks of test/deploy/deploy.spec.ts.
//
// A kustomize Kustomization has no struct in k8s.io/api: it is decoded into
// the subset declared below (still strict), and every file it lists must
// exist beside it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization these manifests use.
type kustomization struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Namespace  string            `json:"namespace,omitempty"`
	Resources  []string          `json:"resources"`
	Labels     []kustomizeLabels `json:"labels,omitempty"`
	Images     []kustomizeImage  `json:"images,omitempty"`
}

type kustomizeLabels struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// target returns a fresh typed value for apiVersion/kind.
func target(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kustomization{}, true
	}
	return nil, false
}

type dumped struct {
	File string          `json:"file"`
	Doc  json.RawMessage `json:"doc"`
}

func main() {
	dump := flag.Bool("dump", false, "print every document as JSON on stdout")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: k8svalidate [-dump] FILE.yaml…")
		os.Exit(2)
	}
	var problems []string
	var out []dumped
	for _, file := range flag.Args() {
		docs, err := validateFile(file)
		if err != nil {
			problems = append(problems, err.Error())
		}
		out = append(out, docs...)
	}
	if *dump {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(out); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "k8svalidate:", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func validateFile(file string) ([]dumped, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []dumped
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for n := 1; ; n++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("%s: document %d: %w", file, n, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		js, err := decodeStrict(file, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, n, err))
			continue
		}
		docs = append(docs, dumped{File: file, Doc: js})
	}
	if len(docs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no documents", file))
	}
	return docs, errors.Join(errs...)
}

// decodeStrict checks one document and returns it as JSON.
func decodeStrict(file string, raw []byte) (json.RawMessage, error) {
	js, err := yaml.YAMLToJSONStrict(raw) // duplicate keys fail here
	if err != nil {
		return nil, err
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	v, ok := target(head.APIVersion, head.Kind)
	if !ok {
		return nil, fmt.Errorf("unsupported apiVersion/kind %q/%q", head.APIVersion, head.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s %s: trailing data", head.APIVersion, head.Kind)
	}
	switch obj := v.(type) {
	case *kustomization:
		var missing []string
		for _, r := range obj.Resources {
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), r)); err != nil {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("Kustomization: resources not found beside it: %s", strings.Join(missing, ", "))
		}
	default:
		if name := metaName(v); name == "" {
			return nil, fmt.Errorf("%s %s: metadata.name is empty", head.APIVersion, head.Kind)
		}
	}
	return js, nil
}

func metaName(v any) string {
	switch o := v.(type) {
	case *appsv1.Deployment:
		return o.Name
	case *policyv1.PodDisruptionBudget:
		return o.Name
	case *corev1.Service:
		return o.Name
	case *corev1.Secret:
		return o.Name
	case *corev1.ConfigMap:
		return o.Name
	case *corev1.ServiceAccount:
		return o.Name
	case *corev1.Namespace:
		return o.Name
	}
	return ""
}

// stripComments drops comment-only lines, so a document of comments alone
// (e.g. a commented-out ServiceMonitor) counts as empty.
func stripComments(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}
