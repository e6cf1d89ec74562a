/**
 * One HTTP/1.1 request/response through an H1Pool: the undici dispatch handler (undici 7
 * controller API) that forwards to the caller's H1ResponseHandler, maps errors to MeshError
 * and turns `onData() === false` into upstream backpressure.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { MeshError } from '../../../../shared/src/errors';
import type { Resource } from '../resources';
import { fromUndiciError } from './pool-errors';
import type { ConnectBackoff } from './connect-backoff';
import { ErrorCodes } from '../../../../shared/src/errors';

/**
 * What the caller (the router) implements to receive a response. Exactly one of
 * `onEnd`, `onError`, `onUpgrade` ends the exchange (onError may follow onHead/onData).
 */
export interface H1ResponseHandler {
  /** Final status line and headers (1xx informational responses are not forwarded). */
  onHead(statusCode: number, headers: IncomingHttpHeaders, statusMessage: string): void;
  /** One body chunk. Return false to stop reading from upstream until `exchange.resume()`. */
  onData(chunk: Buffer): boolean;
  /** Body complete; `trailers` is {} when the upstream sent none. */
  onEnd(trailers: IncomingHttpHeaders): void;
  /** Failed, before or after onHead. */
  onError(err: MeshError): void;
  /**
   * 101 Switching Protocols (or 2xx to CONNECT): the raw upstream socket, now owned by the
   * caller. Only for requests with `upgrade` set (or method CONNECT). If absent, the socket is
   * destroyed and onError gets UPSTREAM_RESET.
   */
  onUpgrade?(statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void;
}

export class H1Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private abortReason: Error | undefined;

  /**
   * `pending`: the cluster's max_pending_requests resource, already taken for this request; it
   * is given back when undici puts the request on a connection (onRequestStart) or fails it.
   */
  constructor(private readonly target: string, private readonly handler: H1ResponseHandler, private pending?: Resource, private readonly backoff?: ConnectBackoff) {}

  /** undici has put the request on a connection (before that, no byte of it was written). */
  get started(): boolean { return this.controller !== undefined; }

  /** Resumes reading the upstream body after `onData` returned false. */
  resume(): void {
    this.controller?.resume();
  }

  /** Aborts the request (e.g. the downstream went away); onError gets `reason` (mapped). */
  abort(reason: Error): void {
    if (this.controller !== undefined) this.controller.abort(reason);
    else this.abortReason = reason; // still queued in the pool: abort when it is dispatched
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.leavePending();
    this.controller = controller;
    if (this.abortReason !== undefined) controller.abort(this.abortReason);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    if (this.handler.onUpgrade !== undefined) {
      this.handler.onUpgrade(statusCode, headers, socket);
      return;
    }
    socket.destroy();
    this.handler.onError(fromUndiciError(this.target, new Error(`unexpected upgrade (status ${statusCode})`)));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return;
    if (this.backoff !== undefined && this.backoff.failures > 0) this.backoff.succeeded();
    this.handler.onHead(statusCode, headers, statusMessage ?? '');
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.handler.onData(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.handler.onEnd(trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.leavePending();
    const mapped = fromUndiciError(this.target, err);
    if (this.backoff !== undefined && (mapped.code === ErrorCodes.UPSTREAM_CONNECT_FAILURE || mapped.code === ErrorCodes.UPSTREAM_CONNECT_TIMEOUT)) this.backoff.failed(mapped);
    this.handler.onError(mapped);
  }

  private leavePending(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    p.dec();
  }
}
