// Package sandboxd is a Go client for sandboxd, the service that makes
// throw-away Linux sandboxes over gRPC.
//
//	c, err := sandboxd.Dial(ctx, "127.0.0.1:8080")
//	if err != nil { ... }
//	defer c.Close()
//	sb, err := c.Create(ctx, sandboxd.CreateOptions{LeaseTTL: time.Minute})
//	if err != nil { ... }
//	defer sb.Close() // destroys the sandbox
//	res, err := sb.Run(ctx, sandboxd.Shell("uname -a").Checked())
//
// While a Sandbox is open its lease is renewed in the background (every
// TTL/3). Idempotent calls are retried on UNAVAILABLE with exponential
// backoff and jitter, so a client rides through a restart of sandboxd;
// calls with side effects (Run, Upload, Move, ...) are not retried once they
// reached the server (Run and Upload are retried only while no connection
// can be made), except CreateSandbox, which carries a request id that makes
// its retries safe.
package sandboxd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// Client is a connection to a sandboxd server. It is safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	rpc  sandboxv1.SandboxServiceClient
	opts options
}

type options struct {
	token       string
	tokenSet    bool
	caFile      string
	certFile    string
	keyFile     string
	tlsConfig   *tls.Config
	useTLS      bool
	callTimeout time.Duration
	retry       RetryPolicy
	dialOpts    []grpc.DialOption
}

// RetryPolicy controls how idempotent calls are retried on UNAVAILABLE.
// The wait before attempt n is min(Initial*2^n, Max), with ±50% jitter; it
// stops when the context ends or MaxElapsed has passed since the first
// attempt.
type RetryPolicy struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration
}

// DefaultRetryPolicy rides through a restart of sandboxd of up to a minute.
var DefaultRetryPolicy = RetryPolicy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, MaxElapsed: time.Minute}

// Option configures Dial.
type Option func(*options)

// WithToken sends `authorization: Bearer <token>` on every call. Without
// it the token comes from the environment variable SANDBOXD_TOKEN, if set.
func WithToken(token string) Option {
	return func(o *options) { o.token, o.tokenSet = token, true }
}

// WithTLS connects over TLS, trusting the CA certificates in caFile (empty:
// the system roots).
func WithTLS(caFile string) Option {
	return func(o *options) { o.useTLS, o.caFile = true, caFile }
}

// WithClientCert presents a client certificate (mutual TLS); implies TLS.
func WithClientCert(certFile, keyFile string) Option {
	return func(o *options) { o.useTLS, o.certFile, o.keyFile = true, certFile, keyFile }
}

// WithTLSConfig connects over TLS with this configuration.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.useTLS, o.tlsConfig = true, cfg }
}

// WithCallTimeout bounds every unary call whose context has no deadline
// (default 2 minutes; 0 for none). Streaming calls (Run, Upload, Download,
// ...) are bounded by their context only.
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) { o.callTimeout = d }
}

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) { o.retry = p }
}

// WithGRPCDialOptions adds raw grpc-go dial options.
func WithGRPCDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Dial connects to sandboxd at addr (host:port). Without a TLS option the
// connection is plaintext (h2c), fine on loopback. The connection is made
// lazily: Dial does not fail when the server is down.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	_ = ctx // kept for API stability: connections are made lazily
	o := options{callTimeout: 2 * time.Minute, retry: DefaultRetryPolicy}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.tokenSet {
		o.token = os.Getenv("SANDBOXD_TOKEN")
	}
	o.token = strings.TrimSpace(o.token)

	dial := []grpc.DialOption{
		// Reconnect quickly after a restart of the server.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16 << 20)),
	}
	if o.useTLS {
		cfg, err := o.buildTLS()
		if err != nil {
			return nil, err
		}
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearerToken{token: o.token, secure: o.useTLS}))
	}
	dial = append(dial, o.dialOpts...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, rpc: sandboxv1.NewSandboxServiceClient(conn), opts: o}, nil
}

func (o *options) buildTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.tlsConfig != nil {
		cfg = o.tlsConfig.Clone()
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("sandboxd: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sandboxd: no certificates in %s", o.caFile)
		}
		cfg.RootCAs = pool
	}
	if o.certFile != "" || o.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("sandboxd: load client certificate: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return cfg, nil
}

// Close closes the connection. Open Sandbox handles stop renewing their
// leases once their calls fail; close or detach them first.
func (c *Client) Close() error { return c.conn.Close() }

// Raw returns the generated gRPC stub, for calls this package does not wrap.
func (c *Client) Raw() sandboxv1.SandboxServiceClient { return c.rpc }

// bearerToken sends the API token with every call. Over plaintext it is
// allowed (loopback); String keeps it out of logs.
type bearerToken struct {
	token  string
	secure bool
}

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}
func (t bearerToken) RequireTransportSecurity() bool { return t.secure }
func (bearerToken) String() string                   { return "bearerToken(redacted)" }

// unaryCtx applies the default call timeout when ctx has no deadline.
func (c *Client) unaryCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.opts.callTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.callTimeout)
}

// retry runs fn until it succeeds, fails with an error other than
// UNAVAILABLE, ctx ends or the policy gives up. fn's error is converted
// with wrapErr.
func (c *Client) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	p := c.opts.retry
	start := time.Now()
	wait := p.Initial
	for attempt := 0; ; attempt++ {
		err := wrapErr(fn(ctx))
		if err == nil || !retryable(err) {
			return err
		}
		if p.MaxElapsed > 0 && time.Since(start) > p.MaxElapsed {
			return err
		}
		if serr := sleepCtx(ctx, jitter(wait)); serr != nil {
			return err
		}
		wait = min(wait*2, p.Max)
	}
}

// unary runs a unary call with the default timeout and retries.
func (c *Client) unary(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := c.unaryCtx(ctx)
	defer cancel()
	return c.retry(ctx, fn)
}

// once runs a unary call that must not be retried.
func (c *Client) once(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := c.unaryCtx(ctx)
	defer cancel()
	return wrapErr(fn(ctx))
}

func retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// unsent reports whether err says the call never reached a server (the
// connection could not be made), so that even a call with side effects may
// be made again.
func unsent(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Unavailable {
		return false
	}
	return strings.Contains(e.Message, "while dialing") || strings.Contains(e.Message, "connection refused")
}

// open opens a stream that must not be retried once it reached the server:
// it is retried (with the policy's backoff, bounded by ctx) only while the
// connection cannot be made at all, e.g. during a restart of sandboxd.
func (c *Client) open(ctx context.Context, fn func() error) error {
	p := c.opts.retry
	start := time.Now()
	wait := p.Initial
	for {
		err := wrapErr(fn())
		if err == nil || !unsent(err) || (p.MaxElapsed > 0 && time.Since(start) > p.MaxElapsed) {
			return err
		}
		if sleepCtx(ctx, jitter(wait)) != nil {
			return err
		}
		wait = min(wait*2, p.Max)
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(randInt63n(int64(d)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
