/** What the sidecar's xDS client accepts from a server, on either protocol. */
export interface XdsClientLimits {
  /** Largest DiscoveryResponse accepted from the server (gRPC max_receive_message_length). Default 64 MiB. */
  maxMessageBytes: number;
  /** Most resources in one response. Default 100000. */
  maxResources: number;
  /** Longest resource name (in a response or a subscription). Default 1024, as the control plane's. */
  maxNameLength: number;
  /** Most names in one subscription. Default 10000, as the control plane's. */
  maxSubscribedNames: number;
  /** error_detail.message is cut to about this many characters. Default 4096. */
  maxErrorDetailChars: number;
}

export const DEFAULT_LIMITS: XdsClientLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxResources: 100_000,
  maxNameLength: 1024,
  maxSubscribedNames: 10_000,
  maxErrorDetailChars: 4096,
};
