/**
 * Pull events: a CloudEvent per manifest pull (and, when enabled, per blob), in the shape of
 * regpress's publish events (docs/events.md), delivered after the response is sent.
 *
 * Events of one isolate are batched: the first one starts a short window, handed to that
 * request's `ctx.waitUntil`, and everything queued until it closes goes in one POST
 * (`application/cloudevents-batch+json`) or one Queue `sendBatch`. The buffer is bounded
 * ({@link MAX_BUFFERED}; beyond it events are dropped and counted), each POST has a timeout,
 * and a failed delivery is logged, never retried into the next pull and never seen by a client.
 */

/** `type` of a pull event. */
export const PULL = "dev.regpress.pull";
/** Events held at most; more are dropped (and counted in the log). */
export const MAX_BUFFERED = 1000;
/** Events per POST or Queue batch at most (a Queue batch holds up to 100 messages). */
export const MAX_BATCH = 100;
/** How long a batch stays open for more events, ms. */
export const WINDOW_MS = 200;
/** How long one delivery may take, ms. */
export const DELIVERY_TIMEOUT_MS = 5000;

/** What a pull event says. */
export interface PullData {
  repository: string;
  /** The tag or digest asked for. */
  reference: string;
  /** The digest served (Docker-Content-Digest), when there was one. */
  digest: string | null;
  type: "manifest" | "blob";
  method: string;
  status: number;
  /** `sub` of the registry token, or `anonymous`. */
  identity: string;
  user_agent: string | null;
  remote_address: string | null;
}

/** A CloudEvent 1.0 in structured mode. */
export interface PullEvent {
  specversion: "1.0";
  id: string;
  type: typeof PULL;
  source: string;
  datacontenttype: "application/json";
  subject: string;
  time: string;
  data: PullData;
}

/** Build the event for one pull at `source`. */
export function pullEvent(source: string, data: PullData, time: Date): PullEvent {
  const separator = data.reference.startsWith("sha256:") ? "@" : ":";
  return {
    specversion: "1.0",
    id: crypto.randomUUID(),
    type: PULL,
    source,
    datacontenttype: "application/json",
    subject: `${data.repository}${separator}${data.reference}`,
    time: time.toISOString(),
    data,
  };
}

/** Where a batch goes. */
export type Deliver = (batch: PullEvent[]) => Promise<void>;

/** POST batches to `url`, with `token` as Bearer when given. */
export function httpDelivery(url: string, token: string | undefined, fetcher: typeof fetch = fetch): Deliver {
  return async (batch) => {
    const headers: Record<string, string> = { "content-type": "application/cloudevents-batch+json" };
    if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`;
    const response = await fetcher(url, {
      method: "POST",
      headers,
      body: JSON.stringify(batch),
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    // Drain the body so the connection can be reused.
    await response.body?.cancel();
    if (response.status < 200 || response.status > 299) {
      throw new Error(`HTTP ${response.status}`);
    }
  };
}

/** Send batches to a Queue binding. */
export function queueDelivery(queue: Queue<PullEvent>): Deliver {
  return async (batch) => {
    await queue.sendBatch(batch.map((body) => ({ body, contentType: "json" })));
  };
}

/** The batching buffer of one isolate. */
export class Outbox {
  #buffer: PullEvent[] = [];
  #open: Promise<void> | undefined;
  #dropped = 0;

  constructor(
    readonly deliver: Deliver,
    readonly windowMs: number = WINDOW_MS,
  ) {}

  /**
   * Queue `event`. Returns the promise of the batch it joins when this call opened it (give it
   * to `ctx.waitUntil`), else undefined: the batch is already another request's to wait for.
   */
  add(event: PullEvent): Promise<void> | undefined {
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.#dropped++;
      return undefined;
    }
    this.#buffer.push(event);
    if (this.#open !== undefined) {
      return undefined;
    }
    this.#open = new Promise<void>((resolve) => setTimeout(resolve, this.windowMs)).then(() => this.#flush());
    return this.#open;
  }

  async #flush(): Promise<void> {
    const events = this.#buffer;
    this.#buffer = [];
    this.#open = undefined;
    if (this.#dropped > 0) {
      console.error(`regpress edge: ${this.#dropped} pull events dropped (more than ${MAX_BUFFERED} waiting)`);
      this.#dropped = 0;
    }
    for (let i = 0; i < events.length; i += MAX_BATCH) {
      const batch = events.slice(i, i + MAX_BATCH);
      try {
        await this.deliver(batch);
      } catch (e) {
        console.error(`regpress edge: ${batch.length} pull events not delivered: ${String(e)}`);
      }
    }
  }
}
