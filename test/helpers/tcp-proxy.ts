import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1, on a port the OS chose, forwarding each new connection to the port `target()` names
 * at that moment, or closing it at once while `target()` is undefined (the server is down). A test that restarts
 * a server on a fresh port of its own keeps its clients on this one, so no port is ever handed out twice: a
 * restart on the old port could find it taken, and a connection to a dead server's old port could reach whatever
 * listens there since. A connection closes when either side does or fails, as one straight to the server would.
 */
export async function tcpProxy(
  target: () => number | undefined,
  /**
   * Looks at each chunk a client sends: 'hold' keeps it and every later one back (a server that stopped
   * answering), 'drop' closes the connection instead of forwarding it.
   */
  inspect?: (chunk: Buffer) => 'pass' | 'hold' | 'drop',
): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const port = target();
    if (port === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('error', end).on('close', () => {
        open.delete(s);
        end();
      });
    }
    if (inspect === undefined) client.pipe(upstream);
    else {
      let held = false;
      client.on('data', (chunk: Buffer) => {
        if (held) return;
        const verdict = inspect(chunk);
        if (verdict === 'drop') return end();
        held = verdict === 'hold';
        if (!held && !upstream.write(chunk)) {
          client.pause();
          upstream.once('drain', () => client.resume());
        }
      });
    }
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
