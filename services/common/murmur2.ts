/**
 * Kafka's murmur2 key hash (the Java client's Utils.murmur2) and the partition the Java client's default partitioner
 * gives a key, so keys land where every other Kafka client puts them. kafkajs has the same hash emulating 64-bit
 * longs in JavaScript, which made it the largest single cost of producing a record; 32-bit Math.imul arithmetic gives
 * the same bits at a fraction of the cost.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;

export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const tail = length & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    h = Math.imul(h, M) ^ Math.imul(k, M);
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[tail]!, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  return h ^ (h >>> 15);
}

/** The partition of a keyed record among `partitionCount`, as the Java client's default partitioner chooses it. */
export function keyPartition(key: Uint8Array, partitionCount: number): number {
  return (murmur2(key) & 0x7fffffff) % partitionCount;
}
