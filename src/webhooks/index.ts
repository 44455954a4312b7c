/**
 * Webhooks: subscriptions (URL, secret, events) and deliveries, kept in Redis; each delivery is a job of its own
 * (type `webhook` in jobs/policy.ts, retried with backoff), so emitting an event is a few Redis writes and never
 * waits on a receiver. A delivery's body is fixed when the event is emitted; every try signs it afresh (sign.ts).
 *
 * Redis: `<prefix>:webhooks:subs` (hash id → subscription), `<prefix>:webhooks:delivery:<id>` (one delivery, kept
 * DELIVERY_TTL_S), `<prefix>:webhooks:sub:<id>:deliveries` (its newest KEEP_DELIVERIES ids).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Redis } from 'ioredis';
import { AppError } from '../errors/index.ts';
import { checkWebhookUrl, isPrivateAddress, postJson } from './http.ts';
import { HEADERS, sign } from './sign.ts';

export const WEBHOOK_EVENTS = ['video.ready', 'video.failed', 'enrichment.done', 'generation.switched'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Deliveries listed per subscription. */
const KEEP_DELIVERIES = 100;
/** How long a delivery record stays readable, seconds. */
const DELIVERY_TTL_S = 7 * 86_400;

export interface Subscription {
  id: string;
  url: string;
  secret: string;
  events: WebhookEvent[];
  createdAt: string;
}

export type DeliveryState = 'pending' | 'retrying' | 'delivered' | 'failed' | 'skipped';

export interface Delivery {
  id: string;
  subscriptionId: string;
  event: WebhookEvent;
  state: DeliveryState;
  /** Tries made so far. */
  attempts: number;
  /** The receiver's HTTP status on the last try (absent when it could not be reached). */
  lastStatus?: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  deliveredAt?: string;
  /** The JSON body every try sends. */
  body: string;
}

/** What an ingest (or any job) needs to tell subscribers something happened. */
export interface WebhookEmitter {
  emit(event: WebhookEvent, data: Record<string, unknown>): Promise<number>;
}

export interface WebhookOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** Enqueues the delivery job (the runtime wires it to the `webhook` job type). */
  enqueue: (deliveryId: string) => Promise<void>;
}

export class Webhooks implements WebhookEmitter {
  readonly #redis: Redis;
  readonly #p: string;
  readonly #o: WebhookOptions;

  constructor(redis: Redis, prefix: string, opts: WebhookOptions) {
    this.#redis = redis;
    this.#p = `${prefix}:webhooks`;
    this.#o = opts;
  }

  async register(input: { url: string; secret?: string; events: WebhookEvent[] }): Promise<Subscription> {
    const url = checkWebhookUrl(input.url, this.#o.allowPrivate);
    if (!this.#o.allowPrivate && !isIP(url.hostname.replace(/^\[|\]$/g, ''))) await this.#checkResolves(url.hostname);
    const sub: Subscription = {
      id: randomUUID().replaceAll('-', ''),
      url: url.href,
      secret: input.secret ?? randomBytes(24).toString('base64url'),
      events: [...new Set(input.events)],
      createdAt: new Date().toISOString(),
    };
    await this.#redis.hset(`${this.#p}:subs`, sub.id, JSON.stringify(sub));
    return sub;
  }

  async #checkResolves(host: string): Promise<void> {
    const addrs = await lookup(host, { all: true }).catch(() => []);
    if (addrs.length === 0) throw new AppError('WEBHOOK_URL_REFUSED', `${host} does not resolve`, { field: 'url' });
    const bad = addrs.find((a) => isPrivateAddress(a.address));
    if (bad) throw new AppError('WEBHOOK_URL_REFUSED', `${host} resolves to the private address ${bad.address}`, { field: 'url' });
  }

  async list(): Promise<Subscription[]> {
    const all = await this.#redis.hvals(`${this.#p}:subs`);
    return all.map((s) => JSON.parse(s) as Subscription).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async get(id: string): Promise<Subscription> {
    const raw = await this.#redis.hget(`${this.#p}:subs`, id);
    if (!raw) throw new AppError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`, { field: 'id' });
    return JSON.parse(raw) as Subscription;
  }

  /** Removes the subscription; its pending deliveries find it gone and are skipped. */
  async remove(id: string): Promise<void> {
    if ((await this.#redis.hdel(`${this.#p}:subs`, id)) === 0)
      throw new AppError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`, { field: 'id' });
  }

  /** The subscription's newest deliveries, newest first. */
  async deliveries(subscriptionId: string): Promise<Delivery[]> {
    await this.get(subscriptionId);
    const ids = await this.#redis.lrange(`${this.#p}:sub:${subscriptionId}:deliveries`, 0, -1);
    const raws = ids.length ? await this.#redis.mget(...ids.map((id) => this.#deliveryKey(id))) : [];
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as Delivery);
  }

  /** Creates and enqueues one delivery per subscription to `event`; returns how many. */
  async emit(event: WebhookEvent, data: Record<string, unknown>): Promise<number> {
    const subs = (await this.list()).filter((s) => s.events.includes(event));
    for (const sub of subs) {
      const now = new Date().toISOString();
      const id = `wh-${randomUUID()}`;
      const d: Delivery = {
        id,
        subscriptionId: sub.id,
        event,
        state: 'pending',
        attempts: 0,
        createdAt: now,
        updatedAt: now,
        body: JSON.stringify({ id, event, createdAt: now, data }),
      };
      await this.#redis
        .multi()
        .set(this.#deliveryKey(id), JSON.stringify(d), 'EX', DELIVERY_TTL_S)
        .lpush(`${this.#p}:sub:${sub.id}:deliveries`, id)
        .ltrim(`${this.#p}:sub:${sub.id}:deliveries`, 0, KEEP_DELIVERIES - 1)
        .exec();
      await this.#o.enqueue(id);
    }
    return subs.length;
  }

  /**
   * One try of a delivery (the `webhook` job). A 2xx answer delivers it; anything else throws
   * WEBHOOK_DELIVERY_FAILED (retried by the job's policy) after recording the try, `finalTry` marking it failed.
   * A URL now refused throws WEBHOOK_URL_REFUSED, which is not retried.
   */
  async deliver(deliveryId: string, finalTry: boolean): Promise<Delivery | null> {
    const raw = await this.#redis.get(this.#deliveryKey(deliveryId));
    if (!raw) return null;
    const d = JSON.parse(raw) as Delivery;
    if (d.state === 'delivered' || d.state === 'skipped') return d;
    const sub = await this.get(d.subscriptionId).catch(() => null);
    if (!sub) return this.#save({ ...d, state: 'skipped', lastError: 'the subscription was removed' });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      [HEADERS.signature]: sign(sub.secret, ts, d.body),
      [HEADERS.timestamp]: String(ts),
      [HEADERS.delivery]: d.id,
      [HEADERS.event]: d.event,
    };
    let status: number | undefined;
    let error: string | undefined;
    try {
      const res = await postJson(new URL(sub.url), d.body, headers, { timeoutMs: this.#o.timeoutMs, allowPrivate: this.#o.allowPrivate });
      status = res.status;
      if (status < 200 || status >= 300) error = `the receiver answered ${status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      if (err instanceof AppError) {
        await this.#save({ ...d, attempts: d.attempts + 1, state: 'failed', lastError: error });
        throw err;
      }
    }
    const tried = { ...d, attempts: d.attempts + 1, ...(status !== undefined ? { lastStatus: status } : {}) };
    if (!error) return this.#save({ ...tried, state: 'delivered', deliveredAt: new Date().toISOString(), lastError: undefined });
    await this.#save({ ...tried, state: finalTry ? 'failed' : 'retrying', lastError: error });
    throw new AppError('WEBHOOK_DELIVERY_FAILED', `delivery ${d.id} to ${sub.url} failed: ${error}`);
  }

  /**
   * Records the generation this process serves; when it differs from the one recorded before (a switch to a new
   * generation, then a restart), emits generation.switched, once across processes (GETSET is atomic).
   */
  async noteGeneration(name: string): Promise<boolean> {
    const before = await this.#redis.getset(`${this.#p}:generation`, name);
    if (before === null || before === name) return false;
    await this.emit('generation.switched', { from: before, to: name });
    return true;
  }

  async #save(d: Delivery): Promise<Delivery> {
    const out = { ...d, updatedAt: new Date().toISOString() };
    await this.#redis.set(this.#deliveryKey(d.id), JSON.stringify(out), 'KEEPTTL');
    return out;
  }

  #deliveryKey(id: string): string {
    return `${this.#p}:delivery:${id}`;
  }
}
