package rivven_test

import (
	"context"
	"log"
	"time"

	rivven "github.com/rivven/rivven-quota/clients/go"
)

// The README's example, compiled with the tests (it needs a sidecar to run, so it has no Output line).
func Example() {
	ctx := context.Background()
	client, err := rivven.Connect(ctx, &rivven.Options{Addr: "127.0.0.1:9190", ClientName: "broker-1"})
	if err != nil {
		log.Fatal(err) // the sidecar is unreachable: rivven.ErrClosed
	}
	defer client.Close()
	quotas := rivven.NewBrokerQuotas(client, &rivven.BrokerOptions{
		RecordDeadline: 25 * time.Millisecond, // past it: 0, fail open
		OnError:        func(err error) { log.Print(err) },
	})

	// On each produce request: record it, then delay, reject, or go on.
	switch ms := quotas.Produce(ctx, "alice", "app-1", 1024); {
	case ms == rivven.Denied:
		log.Print("alice is blocked: reject the request")
	case ms > 0:
		log.Printf("throttle alice for %d ms", ms)
	}
	log.Printf("failed open %d times", quotas.Failures())
}
