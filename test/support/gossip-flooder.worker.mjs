// A gossipsub member that floods the control topic, on a thread of its own so
// that its signing and sending do not share the event loop of the nodes it
// floods (test/integration/gossip-scoring.test.ts). Plain JavaScript: a worker
// thread loads no TypeScript. Its gossipsub is createGossipFuzzPeer's
// (test/support/fuzz-gossip.ts): the node's settings, no topic scoring.
//
// workerData: { topic, addrs }. Messages in: { type: 'bytes', bytes },
// { type: 'publish' } (one message), { type: 'flood', perSecond },
// { type: 'stop' }. Out: { type: 'ready', peerId }, { type: 'published' },
// { type: 'stopped', stats }.
import { parentPort, workerData } from 'node:worker_threads'

// libp2p 3 needs Promise.withResolvers (Node 22), and a thread has globals of its own (src/util/polyfills.ts).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const [{ createLibp2p }, { tcp }, { noise }, { yamux }, { identify }, { gossipsub }, { generateKeyPair }, { multiaddr }] = await Promise.all([
  import('libp2p'), import('@libp2p/tcp'), import('@libp2p/noise'), import('@libp2p/yamux'), import('@libp2p/identify'),
  import('@libp2p/gossipsub'), import('@libp2p/crypto/keys'), import('@multiformats/multiaddr')
])

const { topic, addrs } = workerData

function fastMsgIdFn (msg) {
  return `${Buffer.from(msg.from ?? new Uint8Array()).toString('base64')}/${Buffer.from(msg.seqno ?? new Uint8Array()).toString('hex')}`
}

const node = await createLibp2p({
  privateKey: await generateKeyPair('Ed25519'),
  addresses: { listen: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 1_000, dialTimeout: 5_000 },
  services: {
    pubsub: gossipsub({
      D: 3, Dlo: 2, Dhi: 5, Dout: 1, Dlazy: 3, heartbeatInterval: 1_000, floodPublish: true, doPX: false,
      allowPublishToZeroTopicPeers: true, emitSelf: false, scoreParams: { IPColocationFactorWeight: 0 }, fastMsgIdFn,
      maxOutboundBufferSize: 64 * 1024 * 1024
    }),
    identify: identify()
  }
})
await node.start()
node.services.pubsub.subscribe(topic)
for (const a of addrs) await node.dial(multiaddr(a))

let bytes = new Uint8Array()
let flooding = false
let done = Promise.resolve()
const stats = { published: 0, errors: 0, elapsedMs: 0, loopBusy: 0 }

async function flood (perSecond) {
  const started = performance.now()
  const elu = performance.eventLoopUtilization()
  const inFlight = new Set()
  while (flooding) {
    const due = Math.floor((performance.now() - started) * perSecond / 1_000) - stats.published
    if (due <= 0 || inFlight.size > 1_000) {
      await new Promise(resolve => setTimeout(resolve, 1))
      continue
    }
    for (let i = 0; i < Math.min(due, 50); i++) {
      stats.published++
      const p = node.services.pubsub.publish(topic, bytes).catch(() => { stats.errors++ })
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    }
    // publish() queues without I/O of its own: without this the loop would run on microtasks alone.
    await new Promise(resolve => setImmediate(resolve))
  }
  await Promise.allSettled([...inFlight])
  stats.elapsedMs = performance.now() - started
  // This thread's own load (process.cpuUsage counts every thread of the process).
  stats.loopBusy = performance.eventLoopUtilization(elu).utilization
}

parentPort.on('message', (m) => {
  switch (m.type) {
    case 'bytes':
      bytes = m.bytes
      break
    case 'publish':
      node.services.pubsub.publish(topic, bytes).catch(() => {}).finally(() => { parentPort.postMessage({ type: 'published' }) })
      break
    case 'flood':
      flooding = true
      done = flood(m.perSecond)
      break
    case 'stop':
      flooding = false
      void done.then(async () => { await node.stop() }).catch(() => {}).finally(() => {
        parentPort.postMessage({ type: 'stopped', stats })
        parentPort.close()
      })
      break
  }
})
parentPort.postMessage({ type: 'ready', peerId: node.peerId.toString() })
