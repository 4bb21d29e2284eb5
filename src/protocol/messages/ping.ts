// Ping {} -> Pong {}
export type Ping = Record<string, never>;
export const decode = (): Ping => ({});
