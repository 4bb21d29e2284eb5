// The options of the server's classes, each with its defaults in a frozen DEFAULT_* beside it: the one place a
// default is written (config/schema.ts reads these for rivven.yaml's defaults; this module loads nothing).
import type { FleetDescribed } from '../protocol/messages/describe-fleet.js';

export interface ConnectionOptions {
  /** A frame announcing a longer body is FRAME_TOO_LARGE (checked before any of it is buffered). @default 1 MiB */
  maxFrameBytes: number;
  /**
   * Reply bytes one connection may hold (written but unsent, plus replies of this read not yet handed to the
   * socket) before the server stops reading from it. Checked after every frame. @default 1 MiB
   */
  maxConnectionBytes: number;
  /** A started frame must be complete within this time, or the connection is closed. @default 30000 */
  frameTimeoutMs: number;
}

export interface ServerOptions extends ConnectionOptions {
  /** The address the protocol port listens on. @default "127.0.0.1" */
  host: string;
  /** The protocol port; 0 picks a free one. @default 9190 */
  port: number;
  /** Sockets open at once, counted from accept; lowered at start to fit the open-file limit. @default 10000 */
  maxConnections: number;
  /**
   * From accept, a socket must finish its TLS handshake and (with a tokens file) authenticate within this
   * time, or it is destroyed. @default 10000
   */
  authTimeoutMs: number;
  /**
   * Sockets still in their TLS handshake or authentication, at most; past it the oldest of them is closed to
   * make room, so that peers that never authenticate cannot keep a broker out. @default 1000
   */
  maxUnauthenticatedConnections: number;
  /** Bytes of unfinished frames across all connections. @default 256 MiB */
  maxPartialFrameBytes: number;
  /** The process's open-file limit; read from the system when undefined (tests pass a small one). */
  fileLimit?: number | undefined;
  /** TLS on the protocol port; undefined for plaintext. */
  tls?: ServerTls | undefined;
}

export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
  /** none, request (a certificate is verified if sent), require (mTLS: connections without one fail). */
  clientAuth: 'none' | 'request' | 'require';
}

/** Every default of ServerOptions (tls and fileLimit have none: plaintext, and the system's limit). */
export const DEFAULT_SERVER_OPTIONS: Readonly<Omit<ServerOptions, 'tls' | 'fileLimit'>> = Object.freeze({
  host: '127.0.0.1',
  port: 9190,
  maxConnections: 10_000,
  maxFrameBytes: 1024 * 1024,
  maxConnectionBytes: 1024 * 1024,
  frameTimeoutMs: 30_000,
  authTimeoutMs: 10_000,
  maxUnauthenticatedConnections: 1000,
  maxPartialFrameBytes: 256 * 1024 * 1024,
});

export interface DispatcherOptions {
  /** A reply larger than this is Error REPLY_TOO_LARGE instead. @default 16 MiB */
  maxReplyBytes: number;
  /** Failed authentications of one source address are answered this far apart (auth.failure_delay_ms). @default 100 */
  authFailureDelayMs: number;
  /** server.auth_timeout_ms: an address's queue of Hellos waiting for their turn reaches at most half of it. @default 10000 */
  authTimeoutMs: number;
  /** The fleet as this sidecar sees it (DescribeFleet); absent without fleet.enabled. */
  fleet?: () => FleetDescribed | undefined;
}

export const DEFAULT_DISPATCHER_OPTIONS: Readonly<Omit<DispatcherOptions, 'fleet'>> = Object.freeze({
  maxReplyBytes: 16 * 1024 * 1024,
  authFailureDelayMs: 100,
  authTimeoutMs: DEFAULT_SERVER_OPTIONS.authTimeoutMs,
});
