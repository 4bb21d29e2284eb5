import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * The operator's HTTP endpoints: GET /metrics (Prometheus text), /healthz (the process is alive) and
 * /readyz (200 once stored quotas are loaded and the protocol port listens, 503 before and while shutting down).
 */
export class HealthServer {
  private readonly server: Server;

  constructor(
    private readonly registry: Registry,
    private readonly ready: () => boolean,
  ) {
    this.server = http.createServer((req, res) => {
      void this.route(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!, res);
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async route(method: string, path: string, res: http.ServerResponse): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    switch (path) {
      case '/metrics':
        try {
          const body = await this.registry.metrics();
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(body);
        } catch (err) {
          send(res, 500, `metrics failed: ${(err as Error).message}\n`);
        }
        return;
      case '/healthz':
        return send(res, 200, 'ok\n');
      case '/readyz':
        return this.ready() ? send(res, 200, 'ready\n') : send(res, 503, 'not ready\n');
      default:
        return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }
}

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
