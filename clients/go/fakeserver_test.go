package rivven_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	rivven "github.com/rivven/rivven-quota/clients/go"
)

// fakeServer is a protocol peer for tests: it answers Hello with HelloOk, keeps every other frame it receives
// and answers it with what reply makes of (correlation id, frame) (nil: no answer).
type fakeServer struct {
	ln     net.Listener
	reply  func(id uint32, frame []byte) []byte
	mu     sync.Mutex
	frames [][]byte
	conns  []net.Conn
	down   bool // closes each connection at once: a server gone away that keeps its port
	hellos int  // Hellos answered: one per connection the client made
}

func newFakeServer(t *testing.T, reply func(id uint32, frame []byte) []byte) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln, reply: reply}
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

func (f *fakeServer) options() *rivven.Options {
	return &rivven.Options{Addr: f.addr(), ConnectAttempts: 1}
}

func (f *fakeServer) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.down {
			f.mu.Unlock()
			_ = c.Close() // before any Hello reply: the client's connect fails and it tries again later
			continue
		}
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		go f.serve(c)
	}
}

var helloOk = mustFrame(0, "\x83\xa4type\xa7HelloOk\xb0protocol_version\x01\xaeserver_version\xa4fake")

func mustFrame(id uint32, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, body...)
}

func withID(frame []byte, id uint32) []byte {
	out := append([]byte(nil), frame...)
	binary.BigEndian.PutUint32(out[4:], id)
	return out
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	first := true
	for {
		var h [4]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(h[:])
		frame := make([]byte, 4+n)
		copy(frame, h[:])
		if _, err := io.ReadFull(c, frame[4:]); err != nil {
			return
		}
		id := binary.BigEndian.Uint32(frame[4:])
		var answer []byte
		if first {
			f.mu.Lock()
			f.hellos++
			f.mu.Unlock()
			answer = withID(helloOk, id)
		} else {
			f.mu.Lock()
			f.frames = append(f.frames, frame)
			f.mu.Unlock()
			answer = f.reply(id, frame)
		}
		first = false
		if answer != nil {
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	}
}

func (f *fakeServer) captured() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.frames...)
}

// setDown(true) closes every connection and each new one at once, so the client stays disconnected;
// setDown(false) serves again on the same port (a restart on the old port could find it taken).
func (f *fakeServer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.conns = nil
	}
}

func (f *fakeServer) helloCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hellos
}

func (f *fakeServer) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
}
