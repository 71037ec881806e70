// Apart from the service, so that the CLI reads it without loading the coordinator.

/** Jobs a coordinator holds at once when its init does not say (`join --max-jobs`). */
export const DEFAULT_MAX_JOBS = 16
