package dev.rivven.client;

/**
 * The one error table of the rivven protocol (docs/protocol.md, "Error codes"), shared by the server, every
 * client and the CLI. A code is never reused for a second meaning; {@link #isRetriable()} says whether the same
 * request may succeed later unchanged (clients retry or fail open on those).
 */
public enum ErrorCode {
  /** The frame length is below 4; the server closes the connection. */
  INVALID_FRAME(false),
  /** The frame length exceeds server.max_frame_bytes; the server closes the connection. */
  FRAME_TOO_LARGE(false),
  /** A frame was started and not completed in time; the server closes the connection. */
  FRAME_TIMEOUT(true),
  /** The body is not a msgpack map, lacks a string type, or has a field of the wrong type or range. */
  INVALID_REQUEST(false),
  /** The body names a request type this server does not know. */
  UNKNOWN_REQUEST_TYPE(false),
  /** Hello asked for a protocol_version this server does not speak. */
  UNSUPPORTED_VERSION(false),
  /** The server has a tokens file and this connection has not authenticated. */
  AUTHENTICATION_REQUIRED(false),
  /** The token was not accepted; the server closes the connection. */
  AUTHENTICATION_FAILED(false),
  /** The authenticated identity lacks the role this request needs. */
  AUTHORIZATION_FAILED(false),
  /** An entity is not one of the valid shapes, or a name is empty or longer than 1024 bytes. */
  INVALID_ENTITY(false),
  /** A quota_key is unknown, or not allowed for that entity. */
  INVALID_QUOTA_KEY(false),
  /**
   * A quota_value is not a value its key takes (a positive number, "&lt;amount&gt;/&lt;unit&gt;", a list of up to 4 rates
   * with distinct units, "unlimited" or null), or a tier name or block reason is not valid.
   */
  INVALID_QUOTA_VALUE(false),
  /** One AlterQuotas request names the same entity and quota_key twice. */
  DUPLICATE_ALTERATION(false),
  /** A list in the request is longer than the server accepts in one request. */
  TOO_MANY_ITEMS(false),
  /** An alteration assigns a tier that has no values and is not in rivven.yaml. */
  UNKNOWN_TIER(false),
  /** An alteration would delete a tier still assigned to entities. */
  TIER_IN_USE(false),
  /** The alteration would configure more entities than storage.max_entities; nothing was applied. */
  TOO_MANY_ENTITIES(false),
  /** The reply would exceed server.max_reply_bytes; narrow the request. */
  REPLY_TOO_LARGE(false),
  /** The change could not be made durable; nothing was applied. */
  STORAGE_ERROR(true),
  /** The server (or this client: maxPending) is shedding load. */
  OVERLOADED(true),
  /** The server is shutting down and takes no new connections. */
  SHUTTING_DOWN(true),
  /** The connection closed before the reply arrived (client side only). */
  CONNECTION_CLOSED(true),
  /** No reply arrived within the request timeout (client side only). */
  TIMEOUT(true),
  /** The call was not sent: no connection, or the breaker is open (client side only). */
  UNAVAILABLE(true),
  /** The server answered with a reply this client does not expect for its request (client side only). */
  UNEXPECTED_REPLY(false),
  /** A bug in the server; the request was not applied. */
  INTERNAL_ERROR(false);

  private final boolean retriable;

  ErrorCode(boolean retriable) {
    this.retriable = retriable;
  }

  /** Whether the same request may succeed later, unchanged. */
  public boolean isRetriable() {
    return retriable;
  }

  /** The code a wire string names; a code this client does not know (a newer server's) is INTERNAL_ERROR. */
  public static ErrorCode fromWire(Object code) {
    if (code instanceof String) {
      try {
        return valueOf((String) code);
      } catch (IllegalArgumentException e) {
        return INTERNAL_ERROR;
      }
    }
    return INTERNAL_ERROR;
  }
}
