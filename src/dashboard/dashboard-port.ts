// Apart from the server, so that the CLI reads it without loading the HTTP stack.

/** The port `join` tries first for its dashboard; the next free one above it when taken. */
export const DEFAULT_DASHBOARD_PORT = 8470
