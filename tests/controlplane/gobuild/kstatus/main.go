// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status), the library
// behind Flux's health checks and `wait`, computes for Kubernetes objects.
//
// It reads a stream of JSON objects on stdin and writes one JSON line per object, in order:
// {"status": "Current", "message": "Resource is Ready"}. Any error exits with status 1.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(in)
	encoder := json.NewEncoder(out)
	for index := 0; ; index++ {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("object %d: %w", index, err)
		}
		// UnmarshalJSON decodes numbers as int64, as status.Compute's NestedInt64 expects.
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("object %d: %w", index, err)
		}
		result, err := status.Compute(object)
		if err != nil {
			return fmt.Errorf("object %d (%s %s): %w", index, object.GetKind(), object.GetName(), err)
		}
		if err := encoder.Encode(verdict{string(result.Status), result.Message}); err != nil {
			return err
		}
	}
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	err := run(bufio.NewReader(os.Stdin), out)
	if flushErr := out.Flush(); err == nil {
		err = flushErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
