/** The HTTP/2 engine of the proxied path when `--h2-engine` is not given (sidecar-command.ts, SidecarOptions.h2Engine). */
export const DEFAULT_H2_ENGINE: 'node' | 'skein' = 'skein';
