//go:build tools

// Package tools pins k8s.io/sample-controller, the canonical Go controller (Foo → Deployment),
// so that `go build k8s.io/sample-controller` builds exactly the version in go.mod.
package tools

import _ "k8s.io/sample-controller"
