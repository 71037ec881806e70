import { Worker } from 'node:worker_threads'
import { CONTROL_TOPIC } from '../../src/protocol/ids.js'

export interface FloodStats { published: number, errors: number, elapsedMs: number, loopBusy: number }

/** The flooder thread, as the test drives it: each call waits for the thread's answer, or its death. */
export class Flooder {
  private readonly worker: Worker
  private readonly waiting = new Map<string, Array<{ resolve: (m: Record<string, unknown>) => void, reject: (err: Error) => void }>>()
  private failure: Error | undefined
  peerId = ''

  constructor (addrs: string[]) {
    this.worker = new Worker(new URL('./gossip-flooder.worker.mjs', import.meta.url), { workerData: { topic: CONTROL_TOPIC, addrs } })
    this.worker.on('message', (m: Record<string, unknown>) => { this.waiting.get(String(m.type))?.shift()?.resolve(m) })
    const fail = (err: Error): void => {
      this.failure = err
      for (const list of this.waiting.values()) for (const w of list.splice(0)) w.reject(err)
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => { fail(new Error(`the flooder thread exited (${code})`)) })
  }

  private async next (type: string): Promise<Record<string, unknown>> {
    if (this.failure !== undefined) throw this.failure
    return await new Promise((resolve, reject) => {
      const list = this.waiting.get(type) ?? []
      list.push({ resolve, reject })
      this.waiting.set(type, list)
    })
  }

  async ready (): Promise<string> {
    this.peerId = String((await this.next('ready')).peerId)
    return this.peerId
  }

  setBytes (bytes: Uint8Array): void { this.worker.postMessage({ type: 'bytes', bytes }) }

  async publishOne (): Promise<void> {
    const published = this.next('published')
    this.worker.postMessage({ type: 'publish' })
    await published
  }

  flood (perSecond: number): void { this.worker.postMessage({ type: 'flood', perSecond }) }

  async stop (): Promise<FloodStats> {
    const stopped = this.next('stopped')
    this.worker.postMessage({ type: 'stop' })
    return (await stopped).stats as FloodStats
  }

  async terminate (): Promise<void> { await this.worker.terminate() }
}
