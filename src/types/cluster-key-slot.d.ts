// cluster-key-slot ships no types; this is the one function rivven uses (the Redis Cluster slot of a key,
// hash tags honoured: the same function ioredis routes by).
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
