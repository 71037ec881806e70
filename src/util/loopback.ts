/** A host name or address of this machine only: `localhost`, `::1` or 127.0.0.0/8. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
