/**
 * The one place a webhook leaves the service: URL rules and the POST itself. Only http(s); a host that is, or
 * resolves to, a loopback, private, link-local or otherwise non-public address is refused unless config allows it
 * (tests do, for their loopback receiver). The check runs at registration and again on the address each delivery
 * actually connects to (a lookup hook on the socket), so a name that later resolves elsewhere (DNS rebinding) is
 * refused too. Redirects are not followed.
 */
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { AppError } from '../errors/index.ts';

const BLOCKED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  BLOCKED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  BLOCKED.addSubnet(net, bits, 'ipv6');
// No ::ffff:0:0/96 rule: BlockList already checks an IPv4-mapped address against the IPv4 rules, and that rule
// would match every IPv4 address too.

/** True for an address deliveries may not reach by default. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Parses and checks a subscriber URL (scheme; a literal address's range). Names are checked when they resolve. */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('WEBHOOK_URL_REFUSED', `${JSON.stringify(raw)} is not a URL`, { field: 'url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppError('WEBHOOK_URL_REFUSED', `webhook URLs must be http or https, not ${url.protocol}`, { field: 'url' });
  }
  if (url.username || url.password) throw new AppError('WEBHOOK_URL_REFUSED', 'webhook URLs may not carry credentials', { field: 'url' });
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) && isPrivateAddress(host)))) {
    throw new AppError(
      'WEBHOOK_URL_REFUSED',
      `${host} is a private or loopback address (allowed only with MONTAGE_WEBHOOK_ALLOW_PRIVATE)`,
      {
        field: 'url',
      },
    );
  }
  return url;
}

/** Resolves like the default lookup (one address or, for happy eyeballs, all), then refuses private addresses. */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const ok = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (ok.length === 0) {
        const all = addresses.map((a) => a.address).join(', ');
        return callback(Object.assign(new Error(`${hostname} resolves only to private addresses (${all})`), { code: 'EACCES' }), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: typeof ok) => void)(null, ok);
      callback(null, ok[0]!.address, ok[0]!.family);
    });
  };
}

export interface PostResult {
  status: number;
  /** The start of the answer's body, for the delivery record. */
  body: string;
}

/** POSTs `body` to `url`; rejects on a refused address, a network error or the timeout. */
export function postJson(url: URL, body: string, headers: Record<string, string>, opts: { timeoutMs: number; allowPrivate: boolean }) {
  checkWebhookUrl(url.href, opts.allowPrivate);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise<PostResult>((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'montage-webhooks/1',
          ...headers,
        },
        lookup: guardedLookup(opts.allowPrivate),
        timeout: opts.timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 512) text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text.slice(0, 512) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
