// Command sdkbench measures run("true") through the Go library against the
// same Exec through the raw generated grpc-go stub, on one sandbox, in
// alternating batches (drift hits both alike). Prints JSON samples in ms.
// Used by bench/sdk.ts; SANDBOXD_ADDR and SANDBOX_ID come from there.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sandboxd.dev/clients/go/sandboxd"
	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

func rawRun(ctx context.Context, raw sandboxv1.SandboxServiceClient, id string) error {
	stream, err := raw.Exec(ctx, &sandboxv1.ExecRequest{SandboxId: id, Command: &sandboxv1.ExecRequest_Argv{Argv: &sandboxv1.Argv{Args: []string{"true"}}}})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return fmt.Errorf("no exited event")
		}
		if err != nil {
			return err
		}
		if e := m.GetExited(); e != nil {
			if e.GetExitCode() != 0 {
				return fmt.Errorf("exit %d", e.GetExitCode())
			}
			return nil
		}
	}
}

func timed(n int, fn func() error) ([]float64, error) {
	out := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		out = append(out, float64(time.Since(t0).Microseconds())/1000)
	}
	return out, nil
}

func main() {
	ctx := context.Background()
	addr, id := os.Getenv("SANDBOXD_ADDR"), os.Getenv("SANDBOX_ID")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	raw := sandboxv1.NewSandboxServiceClient(conn)
	client, err := sandboxd.Dial(ctx, addr)
	if err != nil {
		panic(err)
	}
	sb, err := client.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	rawFn := func() error { return rawRun(ctx, raw, id) }
	sdkFn := func() error { _, err := sb.Run(ctx, sandboxd.Argv("true")); return err }
	res := map[string][]float64{"raw": {}, "sdk": {}}
	for _, warm := range []func() error{rawFn, sdkFn} {
		if _, err := timed(30, warm); err != nil {
			panic(err)
		}
	}
	for batch := 0; batch < 10; batch++ {
		r, err := timed(30, rawFn)
		if err != nil {
			panic(err)
		}
		s, err := timed(30, sdkFn)
		if err != nil {
			panic(err)
		}
		res["raw"] = append(res["raw"], r...)
		res["sdk"] = append(res["sdk"], s...)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}
