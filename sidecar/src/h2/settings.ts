/**
 * HTTP/2 settings (RFC 9113 6.5): identifiers, the protocol's initial values, and the checks
 * of 6.5.2 a received value must pass. Unknown identifiers are ignored (6.5.2).
 */
import { H2_ERROR, connectionError } from './errors';
import type { H2Error } from './errors';
import { MAX_INT31 } from './frame-types';

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The initial values every endpoint assumes before SETTINGS arrive (RFC 9113 6.5.2). */
export const INITIAL_SETTINGS = {
  headerTableSize: 4096,
  enablePush: 1,
  maxConcurrentStreams: Infinity,
  initialWindowSize: 65535,
  maxFrameSize: 16384,
  maxHeaderListSize: Infinity,
} as const;

export const MIN_MAX_FRAME_SIZE = 16384;
export const MAX_MAX_FRAME_SIZE = 16777215;

/** The error a received setting's value is, or undefined when it is allowed. */
export function checkSetting(id: number, value: number): H2Error | undefined {
  switch (id) {
    case SETTING.ENABLE_PUSH:
      if (value > 1) return connectionError(H2_ERROR.PROTOCOL_ERROR, 'setting-enable-push', `SETTINGS_ENABLE_PUSH ${value} is neither 0 nor 1`);
      return undefined;
    case SETTING.INITIAL_WINDOW_SIZE:
      if (value > MAX_INT31) return connectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'setting-initial-window-size', `SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31 - 1`);
      return undefined;
    case SETTING.MAX_FRAME_SIZE:
      if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) return connectionError(H2_ERROR.PROTOCOL_ERROR, 'setting-max-frame-size', `SETTINGS_MAX_FRAME_SIZE ${value} is outside 16384..16777215`);
      return undefined;
    default:
      return undefined;
  }
}
