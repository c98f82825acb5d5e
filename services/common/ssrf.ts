/**
 * The SSRF guard: by default only public unicast addresses are dialled. The decision is taken on the address the
 * connection is actually made to, inside the HTTP client's connector, after DNS resolution — so a name that resolves
 * to a public address when checked and a private one later (DNS rebinding) cannot get through, and IP literals are
 * checked the same way. A pool may allow CIDR ranges or host names explicitly (local development allows loopback).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
  readonly code = 'ESSRFBLOCKED';
  /** Why, without the advice: "127.0.0.1 is loopback". */
  readonly detail: string;

  constructor(hostname: string, detail: string) {
    super(`refused to connect to ${hostname}: ${detail} (not a public address; allow it with DISPATCHER_ALLOW_NETWORKS)`);
    this.detail = detail;
  }
}

export interface SsrfPolicy {
  /** CIDR ranges and host names that may be dialled although not public, e.g. 127.0.0.0/8, ::1/128, localhost. */
  allow: readonly string[];
}

export interface AddressGuard {
  /** The address to connect to for `hostname`, or a BlockedAddressError saying why none may be used. */
  resolve(hostname: string): Promise<{ address: string; family: 4 | 6 }>;
}

export function createAddressGuard({ allow }: SsrfPolicy): AddressGuard {
  const ranges = allow.filter((entry) => entry.includes('/')).map((cidr) => ipaddr.parseCIDR(cidr));
  const hosts = new Set(allow.filter((entry) => !entry.includes('/')).map((host) => host.toLowerCase()));

  const refusal = (address: string): string | undefined => {
    const parsed = ipaddr.parse(address);
    if (ranges.some((range) => parsed.kind() === range[0].kind() && parsed.match(range))) return undefined;
    const range = parsed.range();
    return range === 'unicast' ? undefined : range;
  };

  return {
    async resolve(rawHostname) {
      const hostname = rawHostname.replace(/^\[|\]$/g, '');
      const literal = isIP(hostname);
      const candidates = literal ? [{ address: hostname, family: literal as 4 | 6 }] : ((await lookup(hostname, { all: true })) as Array<{ address: string; family: 4 | 6 }>);
      if (hosts.has(hostname.toLowerCase()) && candidates[0]) return candidates[0];
      const reasons: string[] = [];
      for (const candidate of candidates) {
        const reason = refusal(candidate.address);
        if (reason === undefined) return candidate;
        reasons.push(`${candidate.address} is ${reason}`);
      }
      throw new BlockedAddressError(hostname, reasons.join(', ') || 'no address');
    },
  };
}
