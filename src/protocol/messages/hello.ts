// Hello { protocol_version: 1, client_name?: string, token?: string }
//   -> HelloOk { protocol_version: 1, server_version: string }
import { encodeFrame } from '../codec.js';
import { RivvenError } from '../error-codes.js';
import { optionalName, optionalString, uint, type Body } from './fields.js';
import type { Call, Message } from './message.js';
import { expectType, numberField, stringField } from './reply.js';

/** Tokens are opaque; longer than any token `rivven token create` makes, short enough to bound memory. */
export const MAX_TOKEN_CHARS = 1024;

export const PROTOCOL_VERSION = 1;

export interface Hello {
  protocolVersion: number;
  clientName: string | undefined;
  token: string | undefined;
}

export function decode(body: Body): Hello {
  const protocolVersion = uint(body, 'protocol_version');
  if (protocolVersion !== PROTOCOL_VERSION) {
    throw new RivvenError(
      'UNSUPPORTED_VERSION',
      `protocol_version ${protocolVersion} is not supported; this server speaks ${PROTOCOL_VERSION}`,
    );
  }
  return { protocolVersion, clientName: optionalName(body, 'client_name'), token: optionalString(body, 'token', MAX_TOKEN_CHARS) };
}

export interface HelloOk {
  protocolVersion: number;
  serverVersion: string;
}

export const encodeRequest = (clientName: string | undefined, token: string | undefined): Body => {
  const body: Body = { type: 'Hello', protocol_version: PROTOCOL_VERSION };
  if (clientName !== undefined) body.client_name = clientName;
  if (token !== undefined) body.token = token;
  return body;
};

export const encodeReply = (r: HelloOk): Body => ({
  type: 'HelloOk',
  protocol_version: r.protocolVersion,
  server_version: r.serverVersion,
});

export function decodeReply(body: Body): HelloOk {
  expectType(body, 'HelloOk');
  return { protocolVersion: numberField(body, 'protocol_version'), serverVersion: stringField(body, 'server_version') };
}

/** What Hello needs of the server. */
export interface HelloServer {
  /** The server's version, for HelloOk. */
  readonly version: string;
  /**
   * Checks Hello's token (docs/security.md): undefined when it passed now (a refusal now throws), or a promise
   * that settles when the token was checked in the source address's turn: rejected when refused.
   */
  authenticate(call: Call, token: string | undefined): Promise<void> | undefined;
}

export const message: Message<Hello, HelloServer, { clientName?: string; token?: string }, HelloOk> = {
  type: 'Hello',
  role: null,
  decode,
  handle(r, server, call) {
    const ok = (): Buffer => {
      call.peer.clientName = r.clientName;
      return encodeFrame(call.id, encodeReply({ protocolVersion: PROTOCOL_VERSION, serverVersion: server.version }));
    };
    const checked = server.authenticate(call, r.token);
    return checked === undefined ? call.out.frame(ok()) : checked.then(ok);
  },
  encode: (p) => encodeRequest(p.clientName, p.token),
  decodeReply,
};
