/**
 * Errors of the skein-owned HTTP/2 engine (RFC 9113 section 7 error codes, RFC 7541 decoding
 * failures). Every error is a MeshError with code PROTOCOL, plus the HTTP/2 error code to send
 * (RST_STREAM or GOAWAY), its scope (RFC 9113 5.4: a connection error ends the connection, a
 * stream error resets one stream) and a stable `reason` tests and stats match on.
 */
import { ErrorCodes, MeshError } from '../../../shared/src/errors';

/** RFC 9113 section 7. */
export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export type ErrorScope = 'connection' | 'stream';

export class H2Error extends MeshError {
  constructor(
    /** The RFC 9113 error code to send. */
    readonly h2Code: number,
    readonly scope: ErrorScope,
    /** The stream a stream error is about (0 for a connection error). */
    readonly streamId: number,
    /** A stable short name of the rule broken, e.g. `pad-length` or `integer-overflow`. */
    readonly reason: string,
    message: string,
  ) {
    super(ErrorCodes.PROTOCOL, message);
    this.name = 'H2Error';
  }
}

/** Why a header block could not be decoded (RFC 7541); each is a COMPRESSION_ERROR of the connection. */
export type HpackErrorReason =
  | 'truncated'
  | 'integer-overflow'
  | 'invalid-index'
  | 'string-length'
  | 'huffman-eos'
  | 'huffman-padding'
  | 'table-size-update-over-limit'
  | 'table-size-update-position'
  | 'table-size-update-missing';

/** A header block that is not valid HPACK: the decoder's state is lost, so the connection ends (RFC 9113 4.3). */
export class HpackError extends H2Error {
  constructor(reason: HpackErrorReason, message: string) {
    super(H2_ERROR.COMPRESSION_ERROR, 'connection', 0, reason, `HPACK: ${message}`);
    this.name = 'HpackError';
  }
}

/**
 * A header list larger than SETTINGS_MAX_HEADER_LIST_SIZE. The block was still decoded to its
 * end, so the dynamic table stays in step and only the stream fails (RFC 9113 10.5.1): a server
 * answers 431 or resets the stream; the decoder does not know the stream, so streamId is 0.
 */
export class HeaderListTooLargeError extends H2Error {
  constructor(readonly size: number, readonly limit: number) {
    super(H2_ERROR.PROTOCOL_ERROR, 'stream', 0, 'header-list-too-large', `header list of at least ${size} bytes is over the limit of ${limit} (SETTINGS_MAX_HEADER_LIST_SIZE)`);
    this.name = 'HeaderListTooLargeError';
  }
}

export function connectionError(h2Code: number, reason: string, message: string): H2Error {
  return new H2Error(h2Code, 'connection', 0, reason, message);
}

export function streamError(h2Code: number, streamId: number, reason: string, message: string): H2Error {
  return new H2Error(h2Code, 'stream', streamId, reason, message);
}
