import { RivvenError } from '../protocol/error-codes.js';
import type { Identities } from './identities.js';
import { ALL_ROLES, roleFor } from './roles.js';

/** What the server knows about who is on the other end of one connection. */
export interface Peer {
  readonly id: number;
  readonly remote: string;
  /** The authenticated name ("anonymous" on a server without a tokens file), as the audit log records it. */
  principal: string;
  /** Role bits (roles.ts): ALL_ROLES without a tokens file, 0 until authenticated with one. */
  roles: number;
  authenticated: boolean;
  clientName: string | undefined;
  /** Set when the connection must close once the current reply is written (a failed Hello). */
  closeAfterReply: boolean;
}

/**
 * Authentication and authorization of requests (docs/security.md). Without a tokens file every connection
 * may do everything and nothing is checked (one integer comparison per request). With one, the first request
 * must be Hello with a valid token (or the connection came with a client certificate whose CN is listed), and
 * each request needs its role.
 */
export class Guard {
  /** Failed authentications (wrong token, missing token), for rivven_auth_failures_total. */
  failures = 0;

  constructor(private identities: Identities | null) {}

  /** Swaps in a reloaded tokens file (SIGHUP); connections keep the identity they authenticated with. */
  replace(identities: Identities): void {
    this.identities = identities;
  }

  /** The starting state of a new connection; `certificateCn` when it presented a verified client certificate. */
  open(peer: Peer, certificateCn: string | undefined): void {
    if (this.identities === null) {
      peer.roles = ALL_ROLES;
      peer.authenticated = true;
      return;
    }
    peer.roles = 0;
    const identity = certificateCn === undefined ? undefined : this.identities.byCertificate(certificateCn);
    if (identity !== undefined) {
      peer.principal = identity.name;
      peer.roles = identity.roles;
      peer.authenticated = true;
    }
  }

  /** Throws AUTHENTICATION_REQUIRED or AUTHORIZATION_FAILED unless `peer` may make a request of `type`. */
  check(peer: Peer, type: string): void {
    if (!peer.authenticated && type !== 'Hello') {
      throw new RivvenError('AUTHENTICATION_REQUIRED', 'this server requires Hello with a token first');
    }
    const role = roleFor(type);
    if (role !== 0 && (peer.roles & role) === 0) {
      throw new RivvenError('AUTHORIZATION_FAILED', `${peer.principal} may not make ${type} requests`);
    }
  }

  /**
   * Hello's token. A valid one authenticates the connection; a wrong one fails it and closes the connection.
   * Without a token, a connection already identified (by its certificate or an earlier Hello) stays so; any
   * other is asked for one. A later Hello may repeat the identity, never change it.
   */
  hello(peer: Peer, token: string | undefined): void {
    if (this.identities === null) return;
    if (token === undefined) {
      if (peer.authenticated) return;
      this.failures++;
      throw new RivvenError('AUTHENTICATION_REQUIRED', 'this server requires a token in Hello');
    }
    const identity = this.identities.byToken(token);
    if (identity === undefined) {
      this.failures++;
      peer.closeAfterReply = true;
      throw new RivvenError('AUTHENTICATION_FAILED', 'the token was not accepted; the connection is closed');
    }
    if (peer.authenticated && (identity.name !== peer.principal || identity.roles !== peer.roles)) {
      // Identity is fixed per connection (as in Kafka): re-authenticating as another principal, or with other
      // roles, ends the connection instead of changing what it may do.
      this.failures++;
      peer.closeAfterReply = true;
      throw new RivvenError(
        'AUTHENTICATION_FAILED',
        `this connection is authenticated as ${peer.principal}; a Hello as another principal closes it (open a new connection)`,
      );
    }
    peer.principal = identity.name;
    peer.roles = identity.roles;
    peer.authenticated = true;
  }
}
