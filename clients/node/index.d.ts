/// <reference types="node" />

/** Settings of a Client; every field is optional. */
export interface Options {
  /** The sidecar's Unix socket (preferred over url). */
  socket?: string;
  /** Its loopback HTTP address, e.g. http://127.0.0.1:8001. */
  url?: string;
  /** 1 MiB: the sidecar's sidecar.ingest.max_request_bytes. */
  maxRequestBytes?: number;
  /** 500 events in one request at most. */
  maxBatchEvents?: number;
  /** 100: how long an event may wait for a batch, in milliseconds. */
  flushIntervalMs?: number;
  /** 10,000 events buffered (and in flight) at most. */
  bufferEvents?: number;
  /** 8 MiB buffered at most. */
  bufferBytes?: number;
  /** 2000: milliseconds for connecting and for one request. */
  timeoutMs?: number;
  /** 10,000: the sidecar's max_malformed_event_size_bytes. */
  maxMalformedBytes?: number;
  /** 1000: milliseconds between connection attempts while the sidecar is away. */
  maxBackoffMs?: number;
  /** true: each event carries the time of the call. */
  timestamps?: boolean;
}

/** Counters in events; every event ends in exactly one of accepted, rateLimited,
 * invalid, heldBack or a dropped* counter, or is still buffered. */
export interface Stats {
  sent: number;
  accepted: number;
  rateLimited: number;
  invalid: number;
  droppedBufferFull: number;
  droppedUnavailable: number;
  droppedOversized: number;
  droppedQueueFull: number;
  droppedRejected: number;
  droppedUnencodable: number;
  droppedClosed: number;
  /** not sent: the sidecar said it would limit them (sent as counts instead) */
  heldBack: number;
  /** Every event dropped, whatever the reason. */
  dropped: number;
  buffered: number;
  requests: number;
  /** 413 answers, for bytes or for events (the batch split and resent). */
  tooLarge: number;
  lastErrors: string[];
  /** What one request may carry now: maxRequestBytes, lowered for good by a 413 for bytes. */
  requestLimitBytes: number;
  /** Likewise maxBatchEvents, lowered for good by a 413 for events. */
  requestLimitEvents: number;
}

export type Raw = Buffer | Uint8Array | string;

export interface Outcome {
  /** The destination's result object (or its raw JSON). */
  success?: Raw | object;
  /** Why the destination failed. */
  error?: string;
  /** Why it was skipped. */
  skip?: string;
  /** The API key the event came with. */
  tokenId?: string;
  /** A test run's tag: cached beyond the id's rate limit (within the sidecar's budget). */
  capture?: string;
}

export declare class Client {
  /** Transport from options, else EVENTS_CACHE_SOCKET / EVENTS_CACHE_URL, else the
   * chart's socket path; throws only when a setting is unusable. */
  constructor(options?: Options);
  readonly settings: Required<Options>;
  /** An event as the ingest received it: the raw body, or a parsed value. Never throws. */
  incoming(
    tokenId: string,
    body: Raw | object,
    marks?: { skip?: string; error?: string; capture?: string; parsed?: boolean },
  ): void;
  /** What a destination made of an event: exactly one of success, error, skip. Never throws. */
  processed(destinationId: string, original: Raw | object, outcome?: Outcome): void;
  stats(): Stats;
  readonly lastErrors: string[];
  /** Resolves true once what was buffered is sent or dropped, false after timeoutMs. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Flushes, then stops; later calls are counted as droppedClosed. Safe to call twice. */
  close(timeoutMs?: number): Promise<boolean>;
}

export declare const DEFAULT_SOCKET: string;
export declare const SOCKET_ENV: string;
export declare const URL_ENV: string;
