// Command kube-controller-manager is the upstream kube-controller-manager, built from the same
// Go module as kube-apiserver, so that tests get garbage collection and namespace deletion.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
