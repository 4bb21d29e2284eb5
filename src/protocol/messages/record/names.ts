// The names and kinds the Record requests' bytes are made of, shared by the writer (write.ts) and the in-place
// reader (read.ts) so what one writes is what the other reads.

export const RECORD_PRODUCE = 1;
export const RECORD_CONSUME = 2;
export const RECORD_REQUEST = 3;

/** A Record request as the server records it: `amount` is bytes, or the count for RecordRequest. */
export class RecordCall {
  /** RECORD_PRODUCE, RECORD_CONSUME or RECORD_REQUEST. */
  kind = 0;
  user: string | null = null;
  clientId: string | null = null;
  /** Always null unless kind is RECORD_CONSUME. */
  consumerGroup: string | null = null;
  amount = 0;
  admit = false;
}

/** The type names, in the order of the kinds (1, 2, 3); they differ at byte 6. */
export const TYPE_NAMES = [Buffer.from('RecordProduce'), Buffer.from('RecordConsume'), Buffer.from('RecordRequest')];
export const K_TYPE = Buffer.from('type');
export const K_USER = Buffer.from('user');
export const K_CLIENT = Buffer.from('client_id');
export const K_GROUP = Buffer.from('consumer_group');
export const K_BYTES = Buffer.from('bytes');
export const K_COUNT = Buffer.from('count');
export const K_ADMIT = Buffer.from('admit');
