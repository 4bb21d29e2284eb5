package rivven_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// harness is conformance/harness.ts, spawned once for the whole test binary: sidecars, signals, hostile
// servers and the Node client's reference answers, over line-delimited JSON (conformance/README.md).
type harness struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	id  int
}

var (
	harnessOnce sync.Once
	theHarness  *harness
	harnessErr  error
)

func repoRoot() string {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	return root
}

// getHarness starts the harness the first time a test needs it.
func getHarness(t *testing.T) *harness {
	t.Helper()
	harnessOnce.Do(func() { theHarness, harnessErr = startHarness() })
	if harnessErr != nil {
		t.Fatalf("conformance harness: %v", harnessErr)
	}
	return theHarness
}

func startHarness() (*harness, error) {
	cmd := exec.Command("node", "--import", "tsx", "conformance/harness.ts")
	cmd.Dir = repoRoot()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &harness{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	h.out.Buffer(make([]byte, 1<<20), 64<<20)
	if !h.out.Scan() {
		return nil, fmt.Errorf("the harness exited before it was ready: %v", h.out.Err())
	}
	var ready map[string]any
	if err := json.Unmarshal(h.out.Bytes(), &ready); err != nil || ready["ready"] != true {
		return nil, fmt.Errorf("the harness's first line is not ready: %s", h.out.Text())
	}
	return h, nil
}

func (h *harness) close() {
	if h == nil {
		return
	}
	_ = h.in.Close() // EOF: the harness stops everything it started and exits
	_ = h.cmd.Wait()
}

// ask sends one command (key, value pairs) and returns its result; a failed command fails the test.
func (h *harness) ask(t *testing.T, cmd string, kv ...any) map[string]any {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.id++
	req := map[string]any{"id": h.id, "cmd": cmd}
	for i := 0; i+1 < len(kv); i += 2 {
		req[kv[i].(string)] = kv[i+1]
	}
	line, _ := json.Marshal(req)
	if _, err := h.in.Write(append(line, '\n')); err != nil {
		t.Fatalf("harness %s: %v", cmd, err)
	}
	if !h.out.Scan() {
		t.Fatalf("harness %s: no reply (%v)", cmd, h.out.Err())
	}
	reply := jsonObj(t, h.out.Bytes())
	if reply["ok"] != true {
		t.Fatalf("harness %s: %v", cmd, reply["error"])
	}
	return reply
}

// jsonObj decodes JSON keeping numbers exact (json.Number).
func jsonObj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytesReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	return v
}

func TestMain(m *testing.M) {
	code := m.Run()
	theHarness.close()
	os.Exit(code)
}
